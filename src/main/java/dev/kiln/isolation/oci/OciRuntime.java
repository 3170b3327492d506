package dev.kiln.isolation.oci;

import dev.kiln.isolation.FileCopy;
import dev.kiln.isolation.Isolation;
import dev.kiln.isolation.SandboxNetwork;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The OCI runtimes kiln drives with the same bundle: {@code runc} for {@code container}, {@code runsc} for
 * {@code gvisor}; with what each isolation can do, and the Docker runtime names that pick it.
 */
public enum OciRuntime {
    RUNC("runc", new Isolation("container", List.of("runc", "kiln-container", "crun"),
            Set.of(SandboxNetwork.Mode.NONE, SandboxNetwork.Mode.BRIDGE, SandboxNetwork.Mode.HOST),
            FileCopy.always(), Set.of("bind", "volume", "tmpfs"), Set.of()),
            // crun would run kiln's bundle, but not here (DESIGN.md §4)
            Map.of("crun", "crun refuses hybrid cgroup v1/v2 hosts such as this one (use --runtime runc)")),
    RUNSC("runsc", new Isolation("gvisor", List.of("runsc", "kiln-gvisor", "gvisor"),
            Set.of(SandboxNetwork.Mode.NONE, SandboxNetwork.Mode.BRIDGE),
            // the Sentry owns a running gVisor sandbox's files: it caches the root (runsc's exclusive file access:
            // files kilnd adds stay unseen, its own writes may not be on the host yet) and keeps /tmp in its memory,
            // so a copy from the host side would be wrong, not just late
            FileCopy.whenStopped("gVisor caches its files and keeps /tmp in memory"), Set.of("bind", "volume", "tmpfs"),
            Set.of()),
            Map.of());

    private final String binary;
    private final Isolation isolation;
    private final Map<String, String> refused;

    OciRuntime(String binary, Isolation isolation, Map<String, String> refused) {
        this.binary = binary;
        this.isolation = isolation;
        this.refused = refused;
    }

    /**
     * Global flags for the sandbox's network. runc joins the namespace the config names. runsc on a bridge runs with
     * {@code --network=host} ("hostinet": the Sentry uses the host kernel's sockets) inside the sandbox's own
     * namespace, which the config names: its netstack ({@code --network=sandbox}) refuses to start on this kernel
     * (DESIGN §4). Without a bridge, {@code --network=none}: loopback only, in the Sentry.
     */
    public List<String> networkFlags(SandboxNetwork network) {
        if (this == RUNC) {
            return List.of();
        }
        return List.of(network.netns() != null ? "--network=host" : "--network=none");
    }

    /** The executable's name on PATH. */
    public String binary() {
        return binary;
    }

    Isolation isolation() {
        return isolation;
    }

    /** Docker runtime names of this isolation that kiln knows but cannot run here, with the reason. */
    Map<String, String> refused() {
        return refused;
    }
}
