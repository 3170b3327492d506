package dev.kiln.cli;

import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * One Dockerfile built twice, its RUN steps in runc containers and in QEMU microVMs (TCG here): the images' layers
 * hold the same files (names, types, modes, owners, contents, link targets, whiteouts). Directory entries are left
 * out of the comparison: they are overlayfs's copy-ups of unchanged parents, which depend on what each runtime touched
 * (kiln-init writes /etc/hostname in a VM, runc bind-mounts it), not on what the Dockerfile did.
 */
@Tag("slow")
class BuildVmTest {
    @TempDir
    static Path work;
    static KilnRun kiln;

    @BeforeAll
    static void start() throws IOException {
        dev.kiln.testing.VmTests.require();
        dev.kiln.testing.Command.require("runc", "runc");
        dev.kiln.testing.Command.require("fuse2fs", "fuse2fs");
        kiln = new KilnRun(work);
        kiln.importBusybox(BuildCliTest.BASE, Map.of());
    }

    @AfterAll
    static void stop() {
        if (kiln != null) {
            kiln.close();
        }
    }

    @Test
    void vmAndContainerBuildsGiveTheSameLayers() throws IOException {
        Path ctx = Files.createDirectories(work.resolve("ctx"));
        Files.writeString(ctx.resolve("Dockerfile"), """
                FROM %s
                RUN busybox mkdir -p /app/data && echo hello > /app/data/file && busybox ln -s file /app/data/link \\
                    && busybox chmod 0700 /app && rm /notexec && echo "built on kernel $(busybox uname -r)"
                COPY input.txt /app/input.txt
                """.formatted(BuildCliTest.BASE));
        Files.writeString(ctx.resolve("input.txt"), "input\n");
        kiln.ok("build", "--isolation", "container", "--network", "none", "-t", "same:container", ctx.toString());
        KilnRun.Result vm = kiln.ok("build", "--isolation", "vm", "--network", "none", "-t", "same:vm",
                ctx.toString());
        String host = Files.readString(Path.of("/proc/sys/kernel/osrelease")).strip();
        assertThat(vm.out()).as("the RUN step ran in a VM, on the guest kernel, not from the container build's cache")
                .contains("built on kernel ").doesNotContain("built on kernel " + host + "\n")
                .doesNotContain("Using cache").contains("Successfully tagged same:vm");
        List<Map<String, String>> container = layers("same:container");
        List<Map<String, String>> inVm = layers("same:vm");
        assertThat(inVm).hasSize(3);
        assertThat(inVm.get(1)).as("the RUN layer").isEqualTo(container.get(1))
                .containsKey("app/data/file").containsKey(".wh.notexec").containsKey("app/data/link");
        assertThat(inVm.get(2)).as("the COPY layer").isEqualTo(container.get(2));
        assertThat(kiln.ok("run", "--rm", "same:vm", "sh", "-c", "cat /app/data/link /app/input.txt; ls /notexec "
                + "2>&1 || true").out()).startsWith("hello\ninput\n");
    }

    /** Each layer of the image as name → what it holds, from {@code kiln save}. */
    static List<Map<String, String>> layers(String image) throws IOException {
        Path tar = work.resolve(image.replace(':', '_') + ".tar");
        kiln.ok("save", "-o", tar.toString(), image);
        Map<String, byte[]> files = new LinkedHashMap<>();
        try (TarArchiveInputStream in = new TarArchiveInputStream(Files.newInputStream(tar))) {
            for (TarArchiveEntry e; (e = in.getNextEntry()) != null; ) {
                if (e.isFile()) {
                    files.put(e.getName(), in.readAllBytes());
                }
            }
        }
        var manifest = new com.fasterxml.jackson.databind.ObjectMapper().readTree(files.get("manifest.json"));
        List<Map<String, String>> out = new ArrayList<>();
        for (var layer : manifest.get(0).get("Layers")) {
            out.add(entries(new ByteArrayInputStream(files.get(layer.asText()))));
        }
        return out;
    }

    private static Map<String, String> entries(InputStream layer) throws IOException {
        Map<String, String> out = new LinkedHashMap<>();
        try (TarArchiveInputStream in = new TarArchiveInputStream(layer)) {
            for (TarArchiveEntry e; (e = in.getNextEntry()) != null; ) {
                if (e.isDirectory()) {
                    continue;
                }
                String what = Integer.toOctalString(e.getMode() & 07777) + " " + e.getLongUserId() + ":"
                        + e.getLongGroupId() + " " + (e.isSymbolicLink() ? "-> " + e.getLinkName() : sha(in));
                out.put(e.getName(), what);
            }
        }
        return new java.util.TreeMap<>(out);
    }

    private static String sha(InputStream in) throws IOException {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(in.readAllBytes()));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

}
