package dev.kiln.api.v1;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;
import java.util.Map;

/**
 * The {@code kiln run/create} flags past {@link CreateRequest}'s first ones, spelled as Docker's CLI takes them and
 * checked by kilnd ({@code api.RunFlagsTranslator}): {@code ulimits} as {@code NAME=SOFT[:HARD]}, {@code devices} as
 * {@code HOST[:CONTAINER[:PERMISSIONS]]}, {@code securityOpt} as {@code no-new-privileges} or {@code seccomp=} with
 * the profile's JSON itself (the CLI reads the file, as Docker's does) or {@code unconfined}. Sizes in bytes;
 * {@code memorySwap} -1 for unlimited; {@code memorySwappiness} null for unset; {@code stopTimeout} null for 10 s.
 */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
@JsonIgnoreProperties(ignoreUnknown = false)
public record RunFlags(boolean init, List<String> capAdd, List<String> capDrop, List<String> securityOpt,
                       List<String> ulimits, List<String> devices, long shmSize, Map<String, String> sysctls,
                       List<String> groupAdd, String pid, String uts, String cgroupns, long cpuShares,
                       String cpusetCpus, long memorySwap, Long memorySwappiness, List<String> deviceCgroupRules,
                       Integer stopTimeout, String logDriver, List<String> aliases, String ip) {

    public static final RunFlags NONE = new RunFlags(false, null, null, null, null, null, 0, null, null, null, null,
            null, 0, null, 0, null, null, null, null, null, null);
}
