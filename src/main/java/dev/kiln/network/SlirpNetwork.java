package dev.kiln.network;

import dev.kiln.KilnException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code --network user} (vm only): QEMU's user-mode network (slirp) inside the VMM. No namespace, bridge, veth, rule
 * or lease exists on the host; the guest has slirp's fixed addresses, and each published port is a {@code hostfwd}
 * socket that QEMU itself listens on. The ports are still reserved through {@link KilnNetwork#allocate} (one host port,
 * one sandbox, whatever the network) and recorded as an {@link Attachment} on the network {@code user} with no
 * namespace, so {@code kiln port} and inspect read them as for a bridge.
 */
public final class SlirpNetwork {

    public static final String NAME = "user";
    public static final String SUBNET = "10.0.2.0/24";
    public static final String ADDRESS = "10.0.2.15";
    public static final int PREFIX_LENGTH = 24;
    public static final String GATEWAY = "10.0.2.2";
    public static final String DNS = "10.0.2.3";

    private SlirpNetwork() {
    }

    /** Records the sandbox's place on the user network (nothing else to set up: QEMU does the rest at boot). */
    public static Attachment attach(String sandboxId, List<PortMapping> ports, Path stateFile) {
        // no namespace: "" rather than null, so inspect's SandboxKey is Docker's empty string as for --network none
        Attachment a = new Attachment(NAME, sandboxId, "", ADDRESS, PREFIX_LENGTH, GATEWAY, mac(sandboxId), ports,
                null);
        KilnNetwork.save(stateFile, a);
        return a;
    }

    /** Whether {@code a} is a user-network record (no namespace: there is nothing to undo but the record). */
    public static boolean recorded(Attachment a) {
        return NAME.equals(a.network()) && (a.netns() == null || a.netns().isEmpty());
    }

    public static void detach(Path stateFile) {
        try {
            Files.deleteIfExists(stateFile);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot remove " + stateFile + ": " + e.getMessage(), e);
        }
    }

    /**
     * A locally administered unicast MAC ({@code 02:…}) from the sandbox id: stable across restarts, and distinct
     * between sandboxes (slirp does not care, but a guest's MAC should never be QEMU's one default for every VM).
     */
    static String mac(String sandboxId) {
        StringBuilder b = new StringBuilder("02");
        for (int i = 0; i < 10; i += 2) {
            b.append(':').append(sandboxId, i, i + 2);
        }
        return b.toString();
    }
}
