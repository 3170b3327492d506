package dev.kiln.api.docker;

import dev.kiln.testing.Command;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The container life-cycle beyond run/stop, through the real docker CLI (issue 15): pause/unpause, update, restart
 * policies, health checks, export; in each isolation where it differs.
 */
class DockerLifecycleTest {

    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;

    /** Prints a line every 0.2 s: its log stops growing while it is frozen. */
    static final String TICKER = "while true; do echo tick; sleep 0.2; done";

    @BeforeAll
    static void start() throws Exception {
        fixture.start(work, "kiln-life-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);
    }

    @AfterAll
    static void stop() {
        fixture.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"runc", "runsc"})
    void pauseFreezesEveryProcessAndUnpauseThawsThem(String runtime) throws Exception {
        if (runtime.equals("runsc")) {
            Command.require("runsc", "runsc");
        }
        String name = "paused-" + runtime;
        docker.ok("run", "-d", "--name", name, "--runtime", runtime, image, "sh", "-c", TICKER);
        try {
            awaitTicks(name, 3);
            assertThat(docker.ok("pause", name).strip()).isEqualTo(name);
            assertPaused(name);
            int frozen = ticks(name);
            Thread.sleep(1000);
            assertThat(ticks(name)).as("no output while paused").isEqualTo(frozen);

            DockerCli.Result exec = docker.run("exec", name, "true");
            assertThat(exec.exitCode()).isNotZero();
            assertThat(exec.err()).contains("is paused, unpause the container before exec");
            assertThat(docker.run("pause", name).err()).contains("is already paused");
            assertThat(docker.run("start", name).err()).contains("paused");

            docker.ok("unpause", name);
            assertThat(docker.ok("inspect", "--format", "{{.State.Status}} {{.State.Paused}}", name).strip())
                    .isEqualTo("running false");
            awaitTicks(name, frozen + 3);
            assertThat(docker.run("unpause", name).err()).contains("is not paused");

            // stop of a paused container works, as Docker's does
            docker.ok("pause", name);
            docker.ok("stop", "-t", "1", name);
            assertThat(docker.ok("inspect", "--format", "{{.State.Status}} {{.State.Paused}}", name).strip())
                    .isEqualTo("exited false");
        } finally {
            docker.run("rm", "-f", name);
        }
        // kill (and rm -f) of a paused container too
        docker.ok("run", "-d", "--name", name, "--runtime", runtime, image, "sleep", "60");
        docker.ok("pause", name);
        docker.ok("kill", name);
        assertThat(docker.ok("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name).strip())
                .isEqualTo("exited 137");
        docker.ok("start", name);
        docker.ok("pause", name);
        docker.ok("rm", "-f", name);
    }

    @Tag("slow")
    @Test
    void aVmPausesThroughQmp() throws Exception {
        dev.kiln.testing.VmTests.require();
        String name = "paused-vm";
        docker.ok("run", "-d", "--name", name, "--runtime", "kiln-vm", image, "sh", "-c", TICKER);
        try {
            awaitTicks(name, 3);
            docker.ok("pause", name);
            assertPaused(name);
            int frozen = ticks(name);
            Thread.sleep(1500);
            assertThat(ticks(name)).as("a stopped VM prints nothing").isEqualTo(frozen);
            docker.ok("unpause", name);
            awaitTicks(name, frozen + 3);
            docker.ok("pause", name);
            docker.ok("stop", "-t", "2", name);
            assertThat(docker.ok("inspect", "--format", "{{.State.Status}}", name).strip()).isEqualTo("exited");
        } finally {
            docker.run("rm", "-f", name);
        }
    }

    private static void assertPaused(String name) {
        assertThat(docker.ok("inspect", "--format", "{{.State.Status}} {{.State.Running}} {{.State.Paused}}", name)
                .strip()).isEqualTo("paused true true");
        assertThat(docker.ok("ps", "--filter", "name=" + name, "--format", "{{.Status}}").strip())
                .startsWith("Up ").endsWith("(Paused)");
        assertThat(docker.ok("ps", "-q", "--filter", "status=paused", "--filter", "name=" + name).strip())
                .isNotEmpty();
        assertThat(Integer.parseInt(docker.ok("info", "--format", "{{.ContainersPaused}}").strip()))
                .isGreaterThanOrEqualTo(1);
    }

    static int ticks(String name) {
        return (int) docker.ok("logs", name).lines().filter(l -> l.equals("tick")).count();
    }

    static void awaitTicks(String name, int n) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            if (ticks(name) >= n) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError(name + " printed fewer than " + n + " ticks");
    }
}
