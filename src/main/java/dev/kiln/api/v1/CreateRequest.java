package dev.kiln.api.v1;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;
import java.util.Map;

/**
 * {@code POST /v1/sandboxes}: what {@code kiln create/run} asks for, after the CLI resolved what only the caller can
 * (its environment for {@code -e K}, {@code --env-file} contents). A null list means "the image's"; an empty
 * {@code entrypoint} means "none" (Docker's {@code --entrypoint ""}). {@code publish}: {@code -p} values as typed;
 * {@code network}: {@code none}, {@code host}, {@code user} (vm), {@code kiln} (also {@code bridge}) or a network
 * made with {@code kiln network create}; null: the isolation's default. {@code publishAll}: {@code -P}.
 * {@code extraHosts}: {@code --add-host NAME:ADDRESS}. {@code kernel}, {@code diskSize}: the vm isolation's
 * {@code --kernel} and {@code --disk-size} (null/0: kilnd's defaults). {@code mounts}: {@code -v}, {@code --mount},
 * {@code --tmpfs} as typed (kilnd checks them: the bind sources are on its host). {@code flags}: the rest
 * ({@link RunFlags}; null for none).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = false)
public record CreateRequest(String image, String name, List<String> cmd, List<String> entrypoint, List<String> env,
                            String workdir, String user, String hostname, String isolation, String runtime,
                            long nanoCpus, long memory, long pidsLimit, boolean readOnly, Map<String, String> labels,
                            boolean tty, boolean openStdin, boolean autoRemove, String platform,
                            List<String> publish, String network, boolean publishAll, List<String> dns,
                            List<String> dnsSearch, List<String> dnsOptions, List<String> extraHosts, String kernel,
                            long diskSize, MountFlags mounts, RunFlags flags,
                            Supervision supervision) {

    /** {@code -v}, {@code --mount} and {@code --tmpfs} values as typed; null lists for none. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record MountFlags(List<String> volumes, List<String> mounts, List<String> tmpfs) {
    }

    /** A request without mounts, with none of {@link RunFlags}' flags and no supervision. */
    public CreateRequest(String image, String name, List<String> cmd, List<String> entrypoint, List<String> env,
                         String workdir, String user, String hostname, String isolation, String runtime,
                         long nanoCpus, long memory, long pidsLimit, boolean readOnly, Map<String, String> labels,
                         boolean tty, boolean openStdin, boolean autoRemove, String platform,
                         List<String> publish, String network, boolean publishAll, List<String> dns,
                         List<String> dnsSearch, List<String> dnsOptions, List<String> extraHosts, String kernel,
                         long diskSize) {
        this(image, name, cmd, entrypoint, env, workdir, user, hostname, isolation, runtime, nanoCpus, memory,
                pidsLimit, readOnly, labels, tty, openStdin, autoRemove, platform, publish, network, publishAll, dns,
                dnsSearch, dnsOptions, extraHosts, kernel, diskSize, null, null, null);
    }
}
