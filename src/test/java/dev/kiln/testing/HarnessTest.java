package dev.kiln.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Proves the test harness itself: a real registry, every fixture served, auth enforced, FileTree semantics. */
class HarnessTest {
    private static TestRegistry registry;

    @TempDir
    Path work;

    @BeforeAll
    static void startRegistry() {
        registry = TestRegistry.start();
    }

    @AfterAll
    static void stopRegistry() {
        if (registry != null) registry.close();
    }

    @Test
    void registryAnswersV2() {
        assertThat(registry.host()).matches("127\\.0\\.0\\.1:\\d+");
        assertThat(registry.get("/v2/").statusCode()).isEqualTo(200);
        assertThat(registry.storage()).isDirectory();
    }

    @Test
    void everyFixtureIsPushedAndItsManifestServed() {
        assertServed(Fixtures.busybox(registry, work), "busybox", "application/vnd.oci.image.manifest.v1+json");
        assertServed(Fixtures.multiLayer(registry, work), "multi-layer", "application/vnd.oci.image.manifest.v1+json");
        Fixture zstd = Fixtures.zstd(registry, work);
        assertServed(zstd, "busybox-zstd", "application/vnd.oci.image.manifest.v1+json");
        assertThat(body(registry.getManifest("busybox-zstd", "latest"))).contains("tar+zstd");
        Fixture multi = Fixtures.multiPlatform(registry, work);
        assertServed(multi, "multi-platform", "application/vnd.oci.image.index.v1+json");
        assertThat(body(registry.getManifest("multi-platform", "latest")))
                .contains("\"architecture\":\"amd64\"", "\"architecture\":\"arm64\"");
    }

    @Test
    void basicAuthRegistryRefusesAnonymousAndAcceptsCredentials() throws Exception {
        try (TestRegistry secured = TestRegistry.startWithBasicAuth("kiln", "s3cret")) {
            try (HttpClient anonymous = HttpClient.newHttpClient()) {
                HttpResponse<Void> refused = anonymous.send(
                        HttpRequest.newBuilder(URI.create(secured.url() + "/v2/")).build(),
                        HttpResponse.BodyHandlers.discarding());
                assertThat(refused.statusCode()).isEqualTo(401);
                assertThat(refused.headers().firstValue("WWW-Authenticate")).hasValueSatisfying(
                        v -> assertThat(v).contains("realm=\"kiln-test\""));
            }
            assertThat(secured.get("/v2/").statusCode()).isEqualTo(200);
            Fixture pushed = Fixtures.busybox(secured, work);
            assertThat(secured.getManifest("busybox", pushed.tag()).statusCode()).isEqualTo(200);
        }
    }

    @Test
    void umociUnpackOfMultiLayerAppliesWhiteoutsAndKeepsModes() {
        Fixture fixture = Fixtures.multiLayerLayout(work);
        Path rootfs = Umoci.unpack(Path.of(fixture.ociLayoutDir()), fixture.tag(), work.resolve("bundle"));
        FileTree tree = FileTree.of(rootfs);

        Fixtures.MULTI_LAYER_GONE.forEach(p -> assertThat(tree.contains(p)).as(p + " removed").isFalse());
        Fixtures.MULTI_LAYER_PRESENT.forEach(p -> assertThat(tree.contains(p)).as(p + " present").isTrue());
        assertThat(tree.get("setuid").mode()).isEqualTo(04755);
        assertThat(tree.get("owned")).satisfies(e -> {
            assertThat(e.uid()).isEqualTo(1000);
            assertThat(e.gid()).isEqualTo(1000);
        });
        assertThat(tree.get("fifo").type()).isEqualTo(FileTree.Type.FIFO);
        assertThat(tree.get("keep/symlink").linkTarget()).isEqualTo("file");
        assertThat(tree.get("keep/hardlink").hardlinkOf()).isEqualTo("keep/file");
        assertThat(tree.get("replaced/new").type()).isEqualTo(FileTree.Type.FILE);
    }

    @Test
    void fileTreeDiffIsEmptyForEqualTreesAndNamesEachDifference() throws Exception {
        Path a = Umoci.unpack(Path.of(Fixtures.busyboxLayout(work).ociLayoutDir()), "latest", work.resolve("a"));
        Path b = Umoci.unpack(Path.of(Fixtures.busyboxLayout(work).ociLayoutDir()), "latest", work.resolve("b"));
        assertThat(FileTree.of(a).diff(FileTree.of(b))).isEmpty();
        assertThat(FileTree.of(a).get("bin/sh").linkTarget()).isEqualTo("busybox");
        assertThat(FileTree.of(a).get("tmp").mode()).isEqualTo(01777);

        Files.delete(b.resolve("etc/group"));
        Files.writeString(b.resolve("etc/passwd"), "changed\n");
        Files.setAttribute(b.resolve("bin/busybox"), "unix:mode", 0700);
        assertThat(FileTree.of(a).diff(FileTree.of(b)))
                .hasSize(3)
                .anySatisfy(d -> assertThat(d).startsWith("only in this:  etc/group"))
                .anySatisfy(d -> assertThat(d).startsWith("etc/passwd: file 0644"))
                .anySatisfy(d -> assertThat(d).startsWith("bin/busybox: file 0755").contains("file 0700"));
    }

    @Test
    void layerTarZstdIsReadableByTheZstdTool() throws Exception {
        Command.require("zstd", "zstd");
        LayerTar layer = new LayerTar().dir("d", 0755).file("d/f", "x\n", 0644).whiteout("d/gone").opaque("e");
        Path compressed = Files.write(work.resolve("layer.tar.zst"), layer.zstd());
        Command.run("zstd", "-q", "-d", compressed.toString(), "-o", work.resolve("layer.tar").toString());
        assertThat(Files.readAllBytes(work.resolve("layer.tar"))).isEqualTo(layer.tar());
        assertThat(Command.run("tar", "-tf", work.resolve("layer.tar").toString()))
                .isEqualTo("d/\nd/f\nd/.wh.gone\ne/.wh..wh..opq\n");
    }

    private static void assertServed(Fixture fixture, String name, String mediaType) {
        assertThat(fixture.registryRef()).isEqualTo(registry.host() + "/" + name + ":latest");
        assertThat(fixture.repository()).isEqualTo(name);
        assertThat(Files.isRegularFile(Path.of(fixture.ociLayoutDir(), "index.json"))).isTrue();
        HttpResponse<byte[]> response = registry.getManifest(name, fixture.tag());
        assertThat(response.statusCode()).as(name + " manifest").isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).hasValue(mediaType);
        String layoutDigest = OciLayout.descriptor(Path.of(fixture.ociLayoutDir()), fixture.tag()).get("digest").asText();
        assertThat(response.headers().firstValue("Docker-Content-Digest")).as("pushed byte-exactly").hasValue(layoutDigest);
    }

    private static String body(HttpResponse<byte[]> response) {
        return new String(response.body(), StandardCharsets.UTF_8);
    }
}
