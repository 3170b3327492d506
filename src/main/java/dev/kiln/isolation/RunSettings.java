package dev.kiln.isolation;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;
import java.util.Map;

/**
 * The {@code docker run} settings past kiln's first set (Docker keeps them in HostConfig, a few in Config and the
 * endpoint settings), as one record so that the engine's {@code SandboxConfig} and {@link SandboxSpec} carry them as
 * one component. Each is honoured by the isolations that can, refused by the others in their
 * {@link Isolator#check} naming the flag — never dropped. Values are checked and normalised by the API faces
 * (capability names with {@code CAP_}, ulimits and devices parsed); null lists and maps mean none.
 *
 * @param init            {@code --init}: a tiny init (tini) as PID 1 that reaps zombies and forwards signals
 * @param capAdd          {@code --cap-add}, {@code CAP_X} or {@code ALL}
 * @param capDrop         {@code --cap-drop}, {@code CAP_X} or {@code ALL}
 * @param noNewPrivileges {@code --security-opt no-new-privileges}
 * @param seccomp         {@code --security-opt seccomp=}: null for kiln's default profile, {@code unconfined}, or
 *                        a profile in Docker's JSON format (the document itself, as the docker CLI sends it)
 * @param ulimits         {@code --ulimit NAME=SOFT[:HARD]}, NAME as Docker spells it ({@code nofile})
 * @param devices         {@code --device HOST[:CONTAINER[:PERMISSIONS]]}
 * @param shmSize         {@code --shm-size} in bytes; 0 for Docker's 64 MiB
 * @param sysctls         {@code --sysctl}: namespaced ones only
 * @param groupAdd        {@code --group-add}: group names (from the image's /etc/group) or gids
 * @param pidMode         {@code --pid}: null or {@code host}
 * @param utsMode         {@code --uts}: null or {@code host}
 * @param cgroupnsMode    {@code --cgroupns}: null (the host's default), {@code host} or {@code private}
 * @param cpuShares       {@code --cpu-shares}; 0 for the default
 * @param cpusetCpus      {@code --cpuset-cpus}, e.g. {@code 0-1}
 * @param memorySwap      {@code --memory-swap} in bytes, memory plus swap; 0 unset, -1 unlimited
 * @param memorySwappiness {@code --memory-swappiness} 0-100; null unset
 * @param deviceCgroupRules {@code --device-cgroup-rule}, e.g. {@code c 1:3 mr}
 * @param stopTimeout     {@code --stop-timeout} in seconds; null for 10
 * @param logDriver       {@code --log-driver}: null or {@code json-file} (kept and read by {@code logs}),
 *                        {@code none}
 * @param aliases         {@code --network-alias}: further names of the sandbox on its networks
 * @param ipAddress       {@code --ip} on its network; null for the next free address
 */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
public record RunSettings(boolean init, List<String> capAdd, List<String> capDrop, boolean noNewPrivileges,
                          String seccomp, List<Ulimit> ulimits, List<Device> devices, long shmSize,
                          Map<String, String> sysctls, List<String> groupAdd, String pidMode, String utsMode,
                          String cgroupnsMode, long cpuShares, String cpusetCpus, long memorySwap,
                          Long memorySwappiness, List<String> deviceCgroupRules, Integer stopTimeout,
                          String logDriver, List<String> aliases, String ipAddress) {

    public static final RunSettings NONE = new RunSettings(false, null, null, false, null, null, null, 0, null, null,
            null, null, null, 0, null, 0, null, null, null, null, null, null);

    public RunSettings {
        capAdd = orEmpty(capAdd);
        capDrop = orEmpty(capDrop);
        ulimits = orEmpty(ulimits);
        devices = orEmpty(devices);
        sysctls = sysctls == null ? Map.of() : Map.copyOf(sysctls);
        groupAdd = orEmpty(groupAdd);
        deviceCgroupRules = orEmpty(deviceCgroupRules);
        aliases = orEmpty(aliases);
    }

    private static <T> List<T> orEmpty(List<T> values) {
        return values == null ? List.of() : List.copyOf(values);
    }

    /** {@code --ulimit}: a resource as Docker names it ({@code nofile}, {@code nproc}, ...) with its limits. */
    public record Ulimit(String name, long soft, long hard) {
        /** The names Docker's --ulimit takes (setrlimit's resources). */
        public static final List<String> NAMES = List.of("as", "core", "cpu", "data", "fsize", "locks", "memlock",
                "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack");

        /** The OCI rlimit type, {@code RLIMIT_NOFILE} for {@code nofile}. */
        public String rlimit() {
            return "RLIMIT_" + name.toUpperCase(java.util.Locale.ROOT);
        }
    }

    /** {@code --device}: a host device node, its path inside the sandbox and the access allowed (of {@code rwm}). */
    public record Device(String pathOnHost, String pathInContainer, String permissions) {
    }

    /** The settings that ask a runtime for something beyond kiln's defaults, by the flag a user typed. */
    @JsonIgnore
    public List<String> flags() {
        List<String> out = new java.util.ArrayList<>();
        add(out, init, "--init");
        add(out, !capAdd.isEmpty(), "--cap-add");
        add(out, !capDrop.isEmpty(), "--cap-drop");
        add(out, noNewPrivileges, "--security-opt no-new-privileges");
        add(out, seccomp != null, "--security-opt seccomp");
        add(out, !ulimits.isEmpty(), "--ulimit");
        add(out, !devices.isEmpty(), "--device");
        add(out, shmSize != 0, "--shm-size");
        add(out, !sysctls.isEmpty(), "--sysctl");
        add(out, pidMode != null, "--pid");
        add(out, utsMode != null, "--uts");
        add(out, cgroupnsMode != null, "--cgroupns");
        add(out, cpuShares != 0, "--cpu-shares");
        add(out, cpusetCpus != null, "--cpuset-cpus");
        add(out, memorySwap != 0, "--memory-swap");
        add(out, memorySwappiness != null, "--memory-swappiness");
        add(out, !deviceCgroupRules.isEmpty(), "--device-cgroup-rule");
        return out;
    }

    private static void add(List<String> out, boolean given, String flag) {
        if (given) {
            out.add(flag);
        }
    }
}
