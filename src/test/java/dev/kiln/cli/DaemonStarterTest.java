package dev.kiln.cli;

import dev.kiln.testing.Command;
import dev.kiln.testing.KilndProcess;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The kilnd the CLI starts when none answers on its run root's socket, found by the command's own request (no probe
 * connection before it), and given kilnd's AOT cache (scripts/aot-cache) when one was made for this jar.
 */
class DaemonStarterTest {

    @TempDir
    Path dir;

    @Test
    void usesKilndsCacheBesideTheJarUnlessItIsOlder() throws Exception {
        Path jar = Files.writeString(dir.resolve("kiln-0.1.0.jar"), "jar");
        Path cache = Files.writeString(dir.resolve("kilnd.aot"), "cache");
        Files.setLastModifiedTime(jar, FileTime.from(Instant.now().minusSeconds(60)));
        assertThat(DaemonStarter.jvmFlags(jar.toString())).contains("-XX:+UseSerialGC", "-XX:AOTCache=" + cache);

        Files.setLastModifiedTime(cache, FileTime.from(Instant.now().minusSeconds(120)));
        assertThat(DaemonStarter.jvmFlags(jar.toString())).containsExactly("-XX:+UseSerialGC");

        Files.delete(cache);
        assertThat(DaemonStarter.jvmFlags(jar.toString())).containsExactly("-XX:+UseSerialGC");
    }

    @Test
    void aCommandStartsKilndWhenNoneAnswersAndTheNextUsesIt() throws Exception {
        Path kiln = KilndProcess.projectDir().resolve("bin/kiln");
        Assumptions.assumeTrue(Files.isRegularFile(KilndProcess.projectDir().resolve("target/kiln-0.1.0.jar")),
                "kiln not built: run scripts/setup first");
        Assumptions.assumeTrue(new com.sun.security.auth.module.UnixSystem().getUid() == 0, "kilnd needs root");
        Path root = dir.resolve("root");
        Path run = dir.resolve("run");
        List<String> ps = List.of(kiln.toString(), "--root", root.toString(), "--run-root", run.toString(), "ps");
        long pid = -1;
        try {
            assertThat(Command.run(Duration.ofSeconds(60), ps)).startsWith("CONTAINER ID");
            pid = Long.parseLong(Files.readString(run.resolve("kilnd.pid")).strip());
            assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive)).as("the kilnd it started").contains(true);
            assertThat(Command.run(Duration.ofSeconds(60), ps)).startsWith("CONTAINER ID");
            assertThat(Long.parseLong(Files.readString(run.resolve("kilnd.pid")).strip()))
                    .as("the second command's kilnd").isEqualTo(pid);
        } finally {
            if (pid > 0) {
                ProcessHandle.of(pid).ifPresent(p -> {
                    p.destroy();
                    p.onExit().orTimeout(30, TimeUnit.SECONDS).join();
                });
            }
        }
    }
}
