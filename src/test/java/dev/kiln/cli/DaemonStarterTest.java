package dev.kiln.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;

import static org.assertj.core.api.Assertions.assertThat;

/** The kilnd the CLI starts gets kilnd's AOT cache (scripts/aot-cache) when one was made for this jar. */
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
}
