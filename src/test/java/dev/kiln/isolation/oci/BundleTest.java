package dev.kiln.isolation.oci;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.isolation.Resources;
import dev.kiln.isolation.SandboxSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The files a bundle consists of, and the /etc files' contents. */
class BundleTest {

    @TempDir
    Path work;

    @Test
    void writesConfigAndEtcFiles() throws Exception {
        Path dir = work.resolve("sandboxes/abc");
        SandboxSpec spec = new SandboxSpec("abc", "abc", "web", RuncSandboxTest.process("true"), dir.resolve("img"),
                false, Resources.UNLIMITED, Map.of(), List.of(), dir);
        Bundle bundle = Bundle.write(spec, RuntimeSpec.build(spec, Bundle.ROOTFS, OciRuntime.RUNC),
                "search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\n");
        assertThat(bundle.rootfs()).isEqualTo(dir.resolve("rootfs"));
        JsonNode config = new ObjectMapper().readTree(bundle.configJson().toFile());
        assertThat(config.at("/root/path").asText()).isEqualTo("rootfs");
        for (JsonNode mount : config.get("mounts")) {
            if (mount.get("type").asText().equals("bind")) {
                assertThat(Path.of(mount.get("source").asText())).isRegularFile();
            }
        }
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(bundle.configJson())))
                .isEqualTo("rw-------");
        assertThat(Files.readString(dir.resolve("hostname"))).isEqualTo("web\n");
        assertThat(Files.readString(dir.resolve("hosts"))).startsWith("127.0.0.1\tlocalhost\n")
                .endsWith("127.0.0.1\tweb\n");
        assertThat(Files.readString(dir.resolve("resolv.conf")))
                .isEqualTo("search example.org\nnameserver 192.0.2.53\n");
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString()).toList())
                    .containsExactlyInAnyOrder("config.json", "hostname", "hosts", "resolv.conf");
        }
    }

    /** A start right after create (kiln run) finds the /etc files it would write there already: not written again. */
    @Test
    void aStartKeepsEtcFilesThatHoldWhatItWouldWriteAndReplacesChangedOnes() throws Exception {
        Path dir = work.resolve("sandboxes/abc");
        SandboxSpec spec = new SandboxSpec("abc", "abc", "web", RuncSandboxTest.process("true"), dir.resolve("img"),
                false, Resources.UNLIMITED, Map.of(), List.of(), dir);
        String resolv = "nameserver 192.0.2.53\n";
        Bundle.write(spec, RuntimeSpec.build(spec, Bundle.ROOTFS, OciRuntime.RUNC), resolv);
        Object hosts = Files.getAttribute(dir.resolve("hosts"), "unix:ino");
        Object hostname = Files.getAttribute(dir.resolve("hostname"), "unix:ino");
        Files.writeString(dir.resolve("resolv.conf"), "nameserver 192.0.2.99\n"); // as the sandbox may have

        Bundle.writeEtcFiles(spec, resolv);
        assertThat(Files.getAttribute(dir.resolve("hosts"), "unix:ino")).isEqualTo(hosts);
        assertThat(Files.getAttribute(dir.resolve("hostname"), "unix:ino")).isEqualTo(hostname);
        assertThat(Files.readString(dir.resolve("resolv.conf"))).isEqualTo(resolv);
        try (var files = Files.list(dir)) { // no temporary file left either way
            assertThat(files.map(p -> p.getFileName().toString()).toList())
                    .containsExactlyInAnyOrder("config.json", "hostname", "hosts", "resolv.conf");
        }
    }
}
