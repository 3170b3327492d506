package dev.kiln.cli;

import dev.kiln.testing.BusyboxRootfs;
import dev.kiln.testing.Command;
import dev.kiln.testing.SmallDisk;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * kiln on a full disk: its root is a small tmpfs ({@link SmallDisk}) filled to the last page. kiln must still free
 * space itself (rmi), a load or an import that runs out of room must take back what it wrote and say why in one
 * line, and a sandbox that ends meanwhile must be recorded with its own exit code.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class FullDiskCliTest {

    @TempDir
    Path tmp;
    SmallDisk disk;
    KilnRun kiln;

    @BeforeEach
    void smallRoot() {
        Command.require("runc", "runc");
        disk = SmallDisk.mount(tmp.resolve("store"), 64L << 20); // KilnRun's daemon root is tmp/store
        kiln = new KilnRun(tmp);
        kiln.startDaemon(); // on a disk with room: these tests are about a disk that fills while kilnd runs
    }

    @AfterEach
    void cleanUp() {
        try {
            if (disk != null) {
                disk.free(); // rm of what a failed test left may need room
            }
            if (kiln != null) {
                kiln.close();
            }
        } finally {
            if (disk != null) {
                disk.close();
            }
        }
    }

    @Test
    void rmiFreesSpaceOnAFullDisk() throws IOException {
        importBusybox("full/a:1", "a");
        importBusybox("full/b:1", "b");
        Map<String, byte[]> blobsOfBoth = blobs();

        disk.fill(0);
        KilnRun.Result first = kiln.kiln("rmi", "full/a:1");
        assertThat(first.exitCode()).as("rmi on a full disk: " + first.err()).isZero();
        assertThat(first.out()).contains("Untagged: full/a:1").contains("Deleted: sha256:");
        assertThat(blobs().size()).as("blobs after the rmi").isLessThan(blobsOfBoth.size());

        // the room given up for the first is taken back once space was freed: a second rmi on a disk filled again
        disk.fill(0);
        KilnRun.Result second = kiln.kiln("rmi", "full/b:1");
        assertThat(second.exitCode()).as("a second rmi on a full disk: " + second.err()).isZero();
        assertThat(kiln.ok("images", "-q").out()).as("images left").isBlank();
        assertThat(blobs()).as("blobs left").isEmpty();
    }

    @Test
    void aLoadThatRunsOutOfSpaceTakesBackItsBlobsAndSaysWhy() throws Exception {
        importBusybox("full/kept:1", "kept");
        Map<String, byte[]> before = blobs();
        Path archive = archiveWithLayers(tmp.resolve("big.tar"), 1 << 20, 1 << 20, 6 << 20);

        disk.fill(3 << 20); // room for the first two layers, not the third
        KilnRun.Result load = kiln.kiln("load", "-i", archive.toString());

        System.out.println("load on a full disk: " + load.err().strip());
        assertThat(load.exitCode()).as(load.err()).isEqualTo(125);
        assertThat(load.errLines()).as("one line naming the cause").singleElement().asString()
                .contains("No space left on device").doesNotContain("Connection reset").doesNotContain("pipe");
        assertThat(blobs().keySet()).as("blobs after the failed load").isEqualTo(before.keySet());
        assertThat(list(kiln.store().resolve("ingest"))).as("ingest leftovers").isEmpty();
        assertThat(kiln.ok("images", "--format", "json").out()).contains("\"Repository\":\"full/kept\"")
                .doesNotContain("full/big");
    }

    @Test
    void anImportOnAFullDiskNamesTheFailedWrite() throws IOException {
        Path tar = BusyboxRootfs.tarball(tmp, Map.of());
        Map<String, byte[]> before = blobs();

        disk.fill(0);
        KilnRun.Result imported = kiln.kiln("import", tar.toString(), "full/imported:1");

        System.out.println("import on a full disk: " + imported.err().strip());
        assertThat(imported.exitCode()).as(imported.err()).isEqualTo(125);
        assertThat(imported.errLines()).singleElement().asString()
                .contains("No space left on device").contains("cannot write").doesNotContain("cannot read");
        assertThat(blobs().keySet()).isEqualTo(before.keySet());
        assertThat(list(kiln.store().resolve("ingest"))).isEmpty();
    }

    @Test
    void aSandboxThatExitsOnAFullDiskIsRecordedWithItsOwnCode() throws Exception {
        importBusybox("full/run:1", "run");
        String id = kiln.ok("run", "-d", "full/run:1", "sh", "-c",
                "trap 'exit 0' TERM; while true; do sleep 0.1; done").out().strip();

        disk.fill(0);
        kiln.ok("kill", "--signal", "TERM", id);

        String status = "";
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline && !status.startsWith("Exited")) {
            Thread.sleep(100);
            status = DaemonClient.JSON.readTree(kiln.ok("ps", "-a", "--filter", "id=" + id, "--format", "json").out())
                    .path("Status").asText();
        }
        assertThat(status).as("the sandbox, which exited 0 on a full disk").startsWith("Exited (0)");
        disk.free();
        kiln.ok("rm", id);
    }

    // ---- helpers ----

    private void importBusybox(String ref, String marker) throws IOException {
        Path work = Files.createDirectories(tmp.resolve("image-" + marker));
        kiln.ok("import", BusyboxRootfs.tarball(work, Map.of("marker", marker)).toString(), ref);
    }

    /** The store's blobs, name to content. */
    private Map<String, byte[]> blobs() throws IOException {
        Map<String, byte[]> out = new LinkedHashMap<>();
        for (Path p : list(kiln.store().resolve("blobs/sha256"))) {
            out.put(p.getFileName().toString(), Files.readAllBytes(p));
        }
        return out;
    }

    private static List<Path> list(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }

    /**
     * An OCI layout archive of one image whose layers are random bytes of the given sizes, written in that order
     * before the index, so that a load stores the first layers before it reaches the last.
     */
    private static Path archiveWithLayers(Path tar, int... sizes) throws Exception {
        Random random = new Random(11);
        Map<String, byte[]> blobs = new LinkedHashMap<>();
        StringBuilder layers = new StringBuilder();
        StringBuilder diffIds = new StringBuilder();
        for (int size : sizes) {
            byte[] layer = new byte[size];
            random.nextBytes(layer);
            String digest = sha256(layer);
            blobs.put(digest, layer);
            layers.append(layers.isEmpty() ? "" : ",").append("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
                    + "\"digest\":\"sha256:").append(digest).append("\",\"size\":").append(size).append('}');
            diffIds.append(diffIds.isEmpty() ? "" : ",").append("\"sha256:").append(digest).append('"');
        }
        byte[] config = ("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
                + diffIds + "]}}").getBytes(StandardCharsets.UTF_8);
        blobs.put(sha256(config), config);
        byte[] manifest = ("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                + "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:"
                + sha256(config) + "\",\"size\":" + config.length + "},\"layers\":[" + layers + "]}")
                .getBytes(StandardCharsets.UTF_8);
        blobs.put(sha256(manifest), manifest);
        byte[] index = ("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                + "\"digest\":\"sha256:" + sha256(manifest) + "\",\"size\":" + manifest.length
                + ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"full/big:1\"}}]}")
                .getBytes(StandardCharsets.UTF_8);
        try (OutputStream file = Files.newOutputStream(tar); TarArchiveOutputStream out = new TarArchiveOutputStream(file)) {
            entry(out, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}".getBytes(StandardCharsets.UTF_8));
            for (var b : blobs.entrySet()) {
                entry(out, "blobs/sha256/" + b.getKey(), b.getValue());
            }
            entry(out, "index.json", index);
        }
        return tar;
    }

    private static void entry(TarArchiveOutputStream out, String name, byte[] content) throws IOException {
        TarArchiveEntry e = new TarArchiveEntry(name);
        e.setSize(content.length);
        out.putArchiveEntry(e);
        out.write(content);
        out.closeArchiveEntry();
    }

    private static String sha256(byte[] content) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(content));
    }
}
