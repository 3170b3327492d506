package dev.kiln.api.docker;

import dev.kiln.testing.Command;
import dev.kiln.testing.Fixtures;
import dev.kiln.testing.TestDaemon;
import dev.kiln.testing.TestRegistry;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What the docker CLI tests stand on: a real registry ({@link TestRegistry}) serving the busybox fixture, a kilnd in
 * this JVM on a short temporary root (the socket's address must fit in 108 bytes, which a {@code @TempDir} path may
 * not leave room for) and the docker CLI pointed at its socket. Nothing is pulled: each test class pulls
 * {@link #image} itself. {@link #close} is safe after a start that failed or was skipped half-way.
 */
final class DockerFixture implements AutoCloseable {

    TestRegistry registry;
    /** The busybox fixture's reference in {@link #registry}. */
    String image;
    /** The short temporary directory holding kilnd's root ({@code root/root}) and run root ({@code root/run}). */
    Path root;
    TestDaemon daemon;
    DockerCli docker;

    /**
     * Skips unless the docker CLI and runc are here, then starts it all; {@code work} (a test's {@code @TempDir})
     * holds the fixture's files and the CLI's config, {@code prefix} names the temporary root.
     */
    void start(Path work, String prefix) throws IOException {
        DockerCli.binary();
        Command.require("runc", "runc");
        registry = TestRegistry.start();
        image = Fixtures.busybox(registry, Files.createDirectories(work.resolve("fixtures"))).registryRef();
        root = Files.createTempDirectory(prefix);
        daemon = new TestDaemon(root.resolve("root"), root.resolve("run"));
        docker = new DockerCli(daemon.socket(), Files.createDirectories(work.resolve("docker-config")));
    }

    /** Removes every container, running or not. */
    void removeContainers() {
        for (String id : docker.run("ps", "-aq").out().lines().toList()) {
            docker.run("rm", "-f", id);
        }
    }

    /**
     * {@code docker run --name taken} while a container of that name exists; the first container is removed
     * before this returns.
     */
    DockerCli.Result runUnderATakenName() {
        docker.ok("create", "--name", "taken", image, "true");
        try {
            return docker.run("run", "--name", "taken", image, "true");
        } finally {
            docker.ok("rm", "taken");
        }
    }

    /** Removes every container, stops kilnd (and the bridges its root made), deletes its root, stops the registry. */
    @Override
    public void close() {
        if (docker != null) {
            removeContainers();
        }
        if (daemon != null) {
            daemon.close();
            dev.kiln.rootfs.Trees.delete(root);
        }
        if (registry != null) {
            registry.close();
        }
    }
}
