package dev.kiln.testing;

import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * The bridges a test's kiln root made (one per network conflist in ROOT/network). kiln leaves a network's bridge up
 * between sandboxes, as Docker leaves docker0; a test root is thrown away, so its bridges go with it. A bridge that
 * still has ports (sandboxes that outlive a daemon being restarted by the test) is left alone.
 */
public final class RootBridges {

    private RootBridges() {
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        }
    }

    public static void delete(Path root) {
        Path dir = root.resolve("network");
        if (!Files.isDirectory(dir)) {
            return;
        }
        try (Stream<Path> files = Files.list(dir)) {
            for (Path conflist : files.filter(f -> f.toString().endsWith(".conflist")).toList()) {
                String bridge = new ObjectMapper().readTree(conflist.toFile()).path("plugins").path(0)
                        .path("bridge").asText("");
                Path ports = Path.of("/sys/class/net", bridge, "brif");
                if (!bridge.isEmpty() && Files.isDirectory(ports) && isEmpty(ports)) {
                    new ProcessBuilder("ip", "link", "delete", bridge).inheritIO().start().waitFor();
                }
            }
        } catch (IOException e) {
            System.err.println("cannot delete the bridges of " + root + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
