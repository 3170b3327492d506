package dev.kiln.testing;

import dev.kiln.network.KilnNetwork;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/** What a sandbox's network leaves on the host, and the check that nothing of it is left after the sandbox. */
public final class NetworkLeftovers {

    private NetworkLeftovers() {
    }

    /**
     * After sandbox {@code id} (address {@code ip}, null if it had none) of the kiln root {@code store} is gone: no
     * namespace, no lease, no iptables rule naming it; with {@code idle} (no sandbox of that root runs) no veth on
     * the root's bridge.
     */
    public static void assertNothingLeft(Path store, boolean idle, String id, String ip, List<String> rulesBefore) {
        String shortId = id.substring(0, 12);
        assertThat(Path.of("/var/run/netns", "kiln-" + shortId)).doesNotExist();
        String bridge = KilnNetwork.forRoot(store).bridge();
        Path ports = Path.of("/sys/class/net", bridge, "brif");
        if (Files.isDirectory(ports) && idle) {
            assertThat(list(ports)).as("veths on " + bridge).isEmpty();
        }
        List<String> after = iptables();
        assertThat(after).noneMatch(l -> l.contains(id));
        if (ip != null) {
            assertThat(after).noneMatch(l -> l.matches(".*\\b" + ip.replace(".", "\\.") + "\\b.*"));
            assertThat(leases(store)).doesNotContain(ip);
        }
        List<String> added = new ArrayList<>(after);
        added.removeAll(rulesBefore);
        assertThat(added).as("iptables rules added and not removed").noneMatch(l -> l.startsWith("-A CNI-DN-")
                || l.contains(shortId));
    }

    public static List<String> iptables() {
        return Stream.concat(Command.run("iptables-save", "-t", "nat").lines(),
                Command.run("iptables-save", "-t", "filter").lines()).filter(l -> !l.startsWith("#")).toList();
    }

    public static List<String> leases(Path store) {
        return list(KilnNetwork.forRoot(store).leaseDir());
    }

    public static List<String> list(Path dir) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).toList();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
