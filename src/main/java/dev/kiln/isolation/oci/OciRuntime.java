package dev.kiln.isolation.oci;

import dev.kiln.isolation.SandboxNetwork;

import java.util.List;

/** The OCI runtimes kiln drives with the same bundle: {@code runc} for {@code container}, {@code runsc} for {@code gvisor}. */
public enum OciRuntime {
    RUNC("runc"),
    RUNSC("runsc");

    private final String binary;

    OciRuntime(String binary) {
        this.binary = binary;
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
}
