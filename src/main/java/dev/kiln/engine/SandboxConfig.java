package dev.kiln.engine;

import com.fasterxml.jackson.annotation.JsonInclude;

import dev.kiln.isolation.RunSettings;

import java.util.List;
import java.util.Map;

/**
 * What a sandbox is created with, as the engine keeps it (stored as JSON in the sandbox's row, see
 * {@link SandboxStore}; a change of this shape is a schema step in {@code state.Database}). Each API face translates
 * its own wire record into it: kiln's {@code /v1} and Docker's {@code POST /containers/create}.
 *
 * <ul>
 * <li>What to run: {@code image} (the reference as given), {@code name} (asked for; null: a random one. A rename
 * changes {@link Sandbox#name()}, not this), {@code platform}.
 * <li>The process, over the image's config: a null list means "the image's"; an empty {@code entrypoint} means
 * "none" (Docker's {@code --entrypoint ""}). {@code env} entries without {@code =} arrive unresolved when the caller
 * had no such variable and are dropped, as Docker drops them.
 * <li>Where: {@code isolation} ({@code container | gvisor | vm}; null or {@code default}: kilnd's default) or Docker's
 * {@code runtime} alias for it; {@code hostname} (null: the short id); {@code readOnly} root filesystem.
 * <li>Limits: {@code nanoCpus}, {@code memory} (bytes), {@code pidsLimit}; 0 means unlimited.
 * <li>Life: {@code labels}, {@code tty}, {@code openStdin}, {@code autoRemove} ({@code --rm}).
 * <li>Network: {@code network} ({@code none}, {@code host}, {@code user} (vm), {@code kiln} or {@code bridge}, or a
 * user network's name; null: the isolation's default), {@code publish} ({@code -p} specs), {@code publishAll}
 * ({@code -P}), {@code dns}, {@code dnsSearch}, {@code dnsOptions}, {@code extraHosts} ({@code NAME:ADDRESS}).
 * <li>The vm isolation: {@code kernel} (an absolute path on kilnd's host; null: kilnd's default) and
 * {@code diskSize} (the writable disk in bytes; 0: kilnd's default).
 * <li>Storage: {@code mounts} (bind mounts, volumes, tmpfs; null: none), completed at create
 * ({@link dev.kiln.engine.volume.Volumes#prepare}).
 * <li>{@code settings}: the {@code docker run} flags past these ({@code --init}, {@code --cap-add}, ...: see
 * {@link RunSettings}); null in rows written before them, read as none.
 * <li>Looking after it: {@code supervision} (restart policy, health check; null: none, the image's health check).
 * </ul>
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record SandboxConfig(String image, String name, List<String> cmd, List<String> entrypoint, List<String> env,
                            String workdir, String user, String hostname, String isolation, String runtime,
                            long nanoCpus, long memory, long pidsLimit, boolean readOnly, Map<String, String> labels,
                            boolean tty, boolean openStdin, boolean autoRemove, String platform,
                            List<String> publish, String network, boolean publishAll, List<String> dns,
                            List<String> dnsSearch, List<String> dnsOptions, List<String> extraHosts, String kernel,
                            long diskSize, dev.kiln.engine.volume.Mounts mounts, RunSettings settings,
                            Supervision supervision) {

    public SandboxConfig {
        settings = settings == null ? RunSettings.NONE : settings;
    }

    /** A config without mounts, with none of {@link RunSettings}'s flags and no supervision. */
    public SandboxConfig(String image, String name, List<String> cmd, List<String> entrypoint, List<String> env,
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

    /** The same config with {@code m} as its mounts. */
    public SandboxConfig withMounts(dev.kiln.engine.volume.Mounts m) {
        return new SandboxConfig(image, name, cmd, entrypoint, env, workdir, user, hostname, isolation, runtime,
                nanoCpus, memory, pidsLimit, readOnly, labels, tty, openStdin, autoRemove, platform, publish, network,
                publishAll, dns, dnsSearch, dnsOptions, extraHosts, kernel, diskSize, m, settings, supervision);
    }
}
