package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testing.Command;
import dev.kiln.testing.FileTree;
import dev.kiln.testing.Fixture;
import dev.kiln.testing.Fixtures;
import dev.kiln.testing.TestRegistry;
import dev.kiln.testing.Umoci;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The image store as a user drives it: kiln's CLI against a real docker-registry, fixtures built with umoci and
 * skopeo, and every unpacked root filesystem compared with umoci's.
 */
class ImageStoreCliTest {

    static TestRegistry registry;
    @TempDir
    static Path shared;
    @TempDir
    Path tmp;
    KilnRun kiln;

    @BeforeAll
    static void startRegistry() {
        registry = TestRegistry.start();
    }

    @AfterAll
    static void stopRegistry() {
        if (registry != null) {
            registry.close();
        }
    }

    @BeforeEach
    void privateRoot() {
        kiln = new KilnRun(tmp);
    }

    @AfterEach
    void stopDaemon() {
        kiln.close();
    }

    @Test
    void pulledImageIsListedWithDigestAndSize() throws Exception {
        Fixture f = Fixtures.busybox(registry, shared);
        KilnRun.Result pull = kiln.ok("pull", f.registryRef());
        assertThat(pull.out()).contains("Pull complete").endsWith(f.registryRef() + "\n");

        String manifestDigest = registry.getManifest(f.registryRef().replaceFirst("^[^/]+/", "").split(":")[0], f.tag())
                .headers().firstValue("Docker-Content-Digest").orElseThrow();
        String table = kiln.ok("images").out();
        assertThat(table.lines().findFirst().orElseThrow()).contains("REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "SIZE");
        assertThat(table).contains(f.registryRef().substring(0, f.registryRef().lastIndexOf(':'))).contains(manifestDigest);

        JsonNode row = new ObjectMapper().readTree(kiln.ok("images", "--format", "json").out().lines().findFirst().orElseThrow());
        assertThat(row.get("Digest").asText()).isEqualTo(manifestDigest);
        assertThat(row.get("Size").asLong()).isGreaterThan(Files.size(Path.of("/usr/bin/busybox")) / 3);

        // a second pull finds every blob present
        assertThat(kiln.ok("pull", f.registryRef()).out()).contains("Already exists").doesNotContain("Pull complete");
        assertThat(kiln.ok("images", "-q").out().lines()).hasSize(1);
    }

    @Test
    void unpackedRootfsEqualsUmocisForEveryFixture() {
        // umoci 0.4 cannot read zstd layers: the zstd fixture is the busybox image recompressed, so it is compared
        // with umoci's unpack of the gzip original
        Fixture gzipBusybox = Fixtures.busyboxLayout(shared.resolve("gzip"));
        Map<Fixture, Fixture> pulledAndReference = new LinkedHashMap<>();
        for (var make : List.<BiFunction<TestRegistry, Path, Fixture>>of(Fixtures::busybox, Fixtures::multiLayer)) {
            Fixture f = make.apply(registry, shared);
            pulledAndReference.put(f, f);
        }
        pulledAndReference.put(Fixtures.zstd(registry, shared), gzipBusybox);
        for (var e : pulledAndReference.entrySet()) {
            Fixture f = e.getKey();
            Fixture reference = e.getValue();
            kiln.ok("pull", "-q", f.registryRef());
            Path mounted = Path.of(kiln.ok("image", "mount", f.registryRef()).out().strip());
            try {
                FileTree expected = FileTree.of(Umoci.unpack(Path.of(reference.ociLayoutDir()), reference.tag(),
                        tmp.resolve("bundle-" + f.repository())));
                assertThat(FileTree.of(mounted).diff(expected)).as(f.registryRef()).isEmpty();
                assertThat(mounted.resolve("etc")).as("read-only mount").satisfiesAnyOf(
                        p -> assertThat(Files.isWritable(p)).isFalse(),
                        p -> assertThat(Command.run("sh", "-c", "touch " + p + "/x 2>&1 || echo refused")).contains("Read-only"));
            } finally {
                kiln.ok("image", "unmount", f.registryRef());
            }
            assertThat(Files.exists(mounted)).isFalse();
        }
    }

    @Test
    void multiLayerWhiteoutsAndOpaqueDirsApply() {
        Fixture f = Fixtures.multiLayer(registry, shared);
        kiln.ok("pull", "-q", f.registryRef());
        Path mounted = Path.of(kiln.ok("image", "mount", f.registryRef()).out().strip());
        try {
            Fixtures.MULTI_LAYER_GONE.forEach(p -> assertThat(mounted.resolve(p)).as(p).doesNotExist());
            Fixtures.MULTI_LAYER_PRESENT.forEach(p -> assertThat(Files.exists(mounted.resolve(p),
                    java.nio.file.LinkOption.NOFOLLOW_LINKS)).as(p).isTrue());
        } finally {
            kiln.ok("image", "unmount", f.registryRef());
        }
    }

    @Test
    void platformIsSelectedFromAnIndex() throws Exception {
        Fixture f = Fixtures.multiPlatform(registry, shared);
        for (String arch : List.of("amd64", "arm64")) {
            try (KilnRun own = new KilnRun(tmp.resolve(arch))) {
            own.ok("pull", "-q", "--platform", "linux/" + arch, f.registryRef());
            Path mounted = Path.of(own.ok("image", "mount", f.registryRef()).out().strip());
            try {
                assertThat(Files.readString(mounted.resolve("platform")).strip()).isEqualTo(arch);
                // the layout tags each platform's manifest by its arch: umoci unpacks that one for comparison
                FileTree expected = FileTree.of(Umoci.unpack(Path.of(f.ociLayoutDir()), arch,
                        tmp.resolve("bundle-" + arch)));
                assertThat(FileTree.of(mounted).diff(expected)).as(arch).isEmpty();
            } finally {
                own.ok("image", "unmount", f.registryRef());
            }
            JsonNode inspect = new ObjectMapper().readTree(own.ok("image", "inspect", f.registryRef()).out());
            assertThat(inspect.get(0).get("Architecture").asText()).isEqualTo(arch);
            }
        }
        KilnRun.Result missing = kiln.kiln("pull", "--platform", "linux/s390x", f.registryRef());
        assertThat(missing.exitCode()).isEqualTo(125);
        assertThat(missing.errLines()).singleElement().asString().contains("linux/s390x", "linux/amd64");
    }

    @Test
    void tagInspectAndRmiFollowDockerRules() throws Exception {
        Fixture f = Fixtures.busybox(registry, shared);
        kiln.ok("pull", "-q", f.registryRef());
        kiln.ok("tag", f.registryRef(), "example/copy:1");
        JsonNode inspect = new ObjectMapper().readTree(kiln.ok("inspect", "example/copy:1").out()).get(0);
        assertThat(inspect.get("RepoTags")).hasSize(2);
        assertThat(inspect.at("/Config/Cmd/0").asText()).isEqualTo("sh");
        String id = inspect.get("Id").asText();

        KilnRun.Result byId = kiln.kiln("rmi", id.substring(7, 19));
        assertThat(byId.exitCode()).isEqualTo(125);
        assertThat(byId.errLines()).singleElement().asString().contains("referenced by 2 names");

        assertThat(kiln.ok("rmi", "example/copy:1").out()).isEqualTo("Untagged: example/copy:1\n");
        long blobs = blobCount();
        assertThat(kiln.ok("rmi", f.registryRef()).out()).contains("Deleted: " + id);
        assertThat(blobCount()).isLessThan(blobs).isZero();
        assertThat(kiln.ok("images", "-q").out()).isEmpty();
    }

    @Test
    void rmiRefusesAMountedImageUnlessForced() {
        Fixture f = Fixtures.busybox(registry, shared);
        kiln.ok("pull", "-q", f.registryRef());
        Path mounted = Path.of(kiln.ok("image", "mount", f.registryRef()).out().strip());
        KilnRun.Result refused = kiln.kiln("rmi", f.registryRef());
        assertThat(refused.exitCode()).isEqualTo(125);
        assertThat(refused.errLines()).singleElement().asString().contains("in use");
        kiln.ok("rmi", "-f", f.registryRef());
        assertThat(mounted).doesNotExist();
    }

    @Test
    void saveAndLoadRoundTripThroughDockerAndOciFormats() throws Exception {
        Fixture f = Fixtures.multiLayer(registry, shared);
        kiln.ok("pull", "-q", f.registryRef());
        Path archive = tmp.resolve("saved.tar");
        kiln.ok("save", "-o", archive.toString(), f.registryRef());
        // independent readers accept it: skopeo as docker-archive and as oci-archive
        assertThat(Command.run("skopeo", "inspect", "docker-archive:" + archive)).contains("\"Layers\"");
        assertThat(Command.run("skopeo", "inspect", "oci-archive:" + archive)).contains("\"Layers\"");

        try (KilnRun other = new KilnRun(tmp.resolve("other"))) {
            assertThat(other.ok("load", "-i", archive.toString()).out()).contains("Loaded image: " + f.registryRef());
            assertThat(new ObjectMapper().readTree(other.ok("inspect", f.registryRef()).out()).get(0).get("Id"))
                    .isEqualTo(new ObjectMapper().readTree(kiln.ok("inspect", f.registryRef()).out()).get(0).get("Id"));
        }
    }

    @Test
    void loadsArchivesWrittenByOtherTools() throws Exception {
        Fixture f = Fixtures.busyboxLayout(shared);
        // a docker save archive made by skopeo (legacy layout: manifest.json + <id>/layer.tar)
        Path dockerArchive = tmp.resolve("docker.tar");
        Command.run("skopeo", "copy", f.ociRef(), "docker-archive:" + dockerArchive + ":example/docker-saved:2");
        assertThat(kiln.ok("load", "-i", dockerArchive.toString()).out()).contains("example/docker-saved:2");
        // an OCI layout directory whose index names the image by a bare tag
        assertThat(kiln.ok("load", "-i", f.ociLayoutDir()).out()).contains("Loaded image: localhost/");

        Path mounted = Path.of(kiln.ok("image", "mount", "example/docker-saved:2").out().strip());
        try {
            FileTree expected = FileTree.of(Umoci.unpack(Path.of(f.ociLayoutDir()), f.tag(), tmp.resolve("bundle")));
            assertThat(FileTree.of(mounted).diff(expected)).isEmpty();
        } finally {
            kiln.ok("image", "unmount", "example/docker-saved:2");
        }
    }

    @Test
    void importTurnsARootfsTarballIntoAOneLayerImage() throws Exception {
        Path rootfs = Files.createDirectories(tmp.resolve("rootfs/bin"));
        Files.copy(Path.of("/usr/bin/busybox"), rootfs.resolve("busybox"));
        Files.createSymbolicLink(rootfs.resolve("sh"), Path.of("busybox"));
        Path tarball = tmp.resolve("rootfs.tar.gz");
        Command.run("tar", "-C", tmp.resolve("rootfs").toString(), "-czf", tarball.toString(), ".");
        String id = kiln.ok("import", tarball.toString(), "example/imported:1").out().strip();
        JsonNode inspect = new ObjectMapper().readTree(kiln.ok("inspect", "example/imported:1").out()).get(0);
        assertThat(inspect.get("Id").asText()).isEqualTo(id);
        assertThat(inspect.at("/RootFS/Layers")).hasSize(1);
        Path mounted = Path.of(kiln.ok("image", "mount", id).out().strip());
        try {
            assertThat(Files.readSymbolicLink(mounted.resolve("bin/sh"))).isEqualTo(Path.of("busybox"));
            assertThat(Files.mismatch(mounted.resolve("bin/busybox"), Path.of("/usr/bin/busybox"))).isEqualTo(-1);
        } finally {
            kiln.ok("image", "unmount", id);
        }
    }

    @Test
    void pushedImageIsReadableBySkopeo() {
        Fixture f = Fixtures.busybox(registry, shared);
        kiln.ok("pull", "-q", f.registryRef());
        String target = registry.host() + "/pushed/by-kiln:7";
        kiln.ok("tag", f.registryRef(), target);
        String pushed = kiln.ok("push", target).out();
        assertThat(pushed).contains("digest: sha256:");
        String digest = pushed.substring(pushed.indexOf("digest: ") + 8).strip();
        String inspected = Command.run("skopeo", "inspect", "--tls-verify=false", "docker://" + target);
        assertThat(inspected).contains("\"Digest\": \"" + digest + "\"").contains("dev.kiln.fixture");
        String config = Command.run("skopeo", "inspect", "--config", "--tls-verify=false", "docker://" + target);
        assertThat(config).contains("\"Cmd\"").contains("\"sh\"");
        try (KilnRun fresh = new KilnRun(tmp.resolve("fresh"))) {
            fresh.ok("pull", "-q", target);
        }
    }

    @Test
    void aBlobThatFailsVerificationIsNeverKept() throws Exception {
        Fixture f = Fixtures.busybox(registry, shared);
        // corrupt the layer inside the registry's own storage: the registry serves it under the old digest
        String repo = f.registryRef().substring(registry.host().length() + 1, f.registryRef().lastIndexOf(':'));
        JsonNode manifest = new ObjectMapper().readTree(registry.getManifest(repo, f.tag()).body());
        String layer = manifest.at("/layers/0/digest").asText().substring(7);
        Path blob;
        try (Stream<Path> s = Files.walk(registry.storage())) {
            blob = s.filter(p -> p.endsWith(Path.of(layer.substring(0, 2), layer, "data"))).findFirst().orElseThrow();
        }
        byte[] bytes = Files.readAllBytes(blob);
        bytes[bytes.length / 2] ^= 0x55;
        Files.write(blob, bytes);
        try {
            KilnRun.Result r = kiln.kiln("pull", f.registryRef());
            assertThat(r.exitCode()).isEqualTo(125);
            assertThat(r.errLines()).singleElement().asString().contains("failed verification");
            assertThat(kiln.ok("images", "-q").out()).isEmpty();
            assertThat(blobFiles()).noneMatch(p -> p.getFileName().toString().equals(layer));
            try (Stream<Path> ingest = Files.list(kiln.store().resolve("ingest"))) {
                assertThat(ingest).isEmpty();
            }
            // the unpack that ran alongside the download kept nothing either
            Path rootfs = kiln.store().resolve("rootfs");
            if (Files.isDirectory(rootfs)) {
                try (Stream<Path> trees = Files.list(rootfs)) {
                    assertThat(trees).isEmpty();
                }
            }
        } finally {
            bytes[bytes.length / 2] ^= 0x55;
            Files.write(blob, bytes);
        }
    }

    @Test
    void errorsAreOneLineWithExitCode125() {
        List<List<String>> cases = List.of(
                List.of("pull", "Not/A/Valid:Ref!"),
                List.of("pull", "127.0.0.1:1/nothing:here"),
                List.of("pull", registry.host() + "/no/such:image"),
                List.of("image", "inspect", "never-pulled"),
                List.of("rmi", "never-pulled"),
                List.of("tag", "never-pulled", "x"),
                List.of("load", "-i", tmp.resolve("missing.tar").toString()),
                List.of("import", tmp.resolve("missing.tar").toString(), "x:1"),
                List.of("image", "unmount", "never-pulled"),
                List.of("pull", "--platform", "linux", "busybox"),
                List.of("pull", "--no-such-flag", "busybox"),
                List.of("images", "--format", "yaml"));
        for (List<String> args : cases) {
            KilnRun.Result r = kiln.kiln(args.toArray(String[]::new));
            assertThat(r.exitCode()).as(args.toString()).isEqualTo(125);
            assertThat(r.errLines()).as(args + ": " + r.err()).singleElement().asString()
                    .startsWith("kiln: ").doesNotContain("Exception").doesNotContain("\tat ");
        }
        KilnRun.Result debug = kiln.kiln("image", "inspect", "never-pulled", "--debug");
        assertThat(debug.err()).contains("at dev.kiln");
    }

    private long blobCount() throws Exception {
        return blobFiles().size();
    }

    private List<Path> blobFiles() throws Exception {
        Path dir = kiln.store().resolve("blobs/sha256");
        try (Stream<Path> s = Files.list(dir)) {
            return s.toList();
        }
    }
}
