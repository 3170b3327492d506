package dev.kiln.image.registry;

import dev.kiln.testing.Command;
import dev.kiln.testing.FileTree;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A docker-registry with a configuration the shared {@code TestRegistry} does not offer (storage redirects, token
 * auth). {@code config} is the YAML after the {@code storage.filesystem} and {@code http.addr} parts.
 */
final class RegistryProcess implements AutoCloseable {

    final Path dir;
    final Path storage;
    final int port;
    private final Process process;

    private RegistryProcess(Path dir, Path storage, int port, Process process) {
        this.dir = dir;
        this.storage = storage;
        this.port = port;
        this.process = process;
    }

    static RegistryProcess start(Path dir, String extraConfig) throws IOException {
        Command.require("docker-registry", "docker-registry");
        Path storage = Files.createDirectories(dir.resolve("storage"));
        int port = freePort();
        Path config = dir.resolve("config.yml");
        Files.writeString(config, """
                version: 0.1
                log:
                  level: error
                  accesslog:
                    disabled: true
                storage:
                  filesystem:
                    rootdirectory: %s
                http:
                  addr: 127.0.0.1:%d
                """.formatted(storage, port) + extraConfig);
        Path log = dir.resolve("registry.log");
        Process p = new ProcessBuilder("docker-registry", "serve", config.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        RegistryProcess r = new RegistryProcess(dir, storage, port, p);
        long deadline = System.nanoTime() + 15_000_000_000L;
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) {
                throw new IllegalStateException("docker-registry exited: " + Files.readString(log));
            }
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
                return r;
            } catch (IOException notYet) {
                sleep();
            }
        }
        r.close();
        throw new IllegalStateException("docker-registry did not listen on " + port + ": " + Files.readString(log));
    }

    String host() {
        return "127.0.0.1:" + port;
    }

    @Override
    public void close() {
        Command.destroyTree(process.toHandle());
        FileTree.deleteRecursively(storage);
    }

    static int freePort() {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void sleep() {
        try {
            Thread.sleep(50);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
