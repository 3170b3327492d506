package dev.kiln.testing;

import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/** The precondition of every test that gives sandboxes a real network (a bridge, veths, IPAM: the CNI plugins). */
public final class NetworkTests {

    private NetworkTests() {
    }

    /** Skips where the CNI reference plugins are not installed. */
    public static void requireCniPlugins() {
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/lib/cni/bridge")),
                "needs the CNI plugins (apt-get install containernetworking-plugins)");
    }
}
