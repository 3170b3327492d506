package dev.kiln.image.registry;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.image.ContentStore;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Manifest;
import dev.kiln.image.MediaType;
import dev.kiln.testing.Command;
import dev.kiln.testing.Fixture;
import dev.kiln.testing.Fixtures;
import dev.kiln.testing.OciLayout;
import dev.kiln.testing.TestRegistry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The distribution client against a real docker-registry holding the busybox fixture (pushed by skopeo). */
class RegistryClientTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path work;
    private static TestRegistry registry;
    private static Path layout;
    private static Digest manifestDigest;
    private static RegistryClient client;

    @BeforeAll
    static void pushFixture() {
        registry = TestRegistry.start();
        Fixture busybox = Fixtures.busybox(registry, work);
        layout = Path.of(busybox.ociLayoutDir());
        manifestDigest = Digest.parse(OciLayout.descriptor(layout, busybox.tag()).get("digest").asText());
        client = RegistryClient.connect(registry.host(), new RegistryAccess(true, Credentials.none()));
    }

    @AfterAll
    static void stop() {
        if (registry != null) {
            registry.close();
        }
    }

    @Test
    void fetchesManifestByTagWithVerifiedDigest() throws IOException {
        FetchedManifest m = client.fetchManifest("busybox", "latest");

        assertThat(m.digest()).isEqualTo(manifestDigest);
        assertThat(Digest.of(m.bytes())).isEqualTo(manifestDigest);
        assertThat(m.mediaType()).isEqualTo(MediaType.OCI_MANIFEST);
        assertThat(m.bytes()).isEqualTo(Files.readAllBytes(blob(manifestDigest)));
    }

    @Test
    void fetchesManifestByDigest() {
        FetchedManifest m = client.fetchManifest("busybox", manifestDigest.toString());

        assertThat(m.digest()).isEqualTo(manifestDigest);
        assertThat(m.mediaType()).isEqualTo(MediaType.OCI_MANIFEST);
    }

    @Test
    void fetchesEveryBlobIntoTheContentStore() throws IOException {
        Manifest manifest = manifest();
        ContentStore store = new ContentStore(work.resolve("store-" + System.nanoTime()));
        List<Descriptor> blobs = new ArrayList<>(manifest.layers());
        blobs.add(manifest.config());

        for (Descriptor d : blobs) {
            AtomicLong lastProgress = new AtomicLong();
            try (ContentStore.Writer w = store.writer(d.contentDigest(), d.size())) {
                client.fetchBlob("busybox", d, w, lastProgress::set);
                assertThat(w.commit()).isEqualTo(d.contentDigest()); // commit re-hashes: the sha256 matches
            }
            assertThat(lastProgress.get()).isEqualTo(d.size());
            assertThat(store.read(d.contentDigest())).isEqualTo(Files.readAllBytes(blob(d.contentDigest())));
        }
    }

    @Test
    void resumesABlobFromAnOffset() throws IOException {
        Descriptor layer = manifest().layers().getFirst();
        byte[] whole = Files.readAllBytes(blob(layer.contentDigest()));
        long offset = whole.length / 2;
        ByteArrayOutputStream tail = new ByteArrayOutputStream();
        AtomicLong position = new AtomicLong();

        client.fetchBlob("busybox", layer, tail, position::set, offset);

        assertThat(tail.toByteArray()).isEqualTo(Arrays.copyOfRange(whole, (int) offset, whole.length));
        assertThat(position.get()).isEqualTo(whole.length);
    }

    @Test
    void resumingAtTheEndFetchesNothing() throws IOException {
        Descriptor config = manifest().config();
        ByteArrayOutputStream out = new ByteArrayOutputStream();

        client.fetchBlob("busybox", config, out, p -> { }, config.size());

        assertThat(out.size()).isZero();
    }

    @Test
    void tellsWhetherABlobExists() throws IOException {
        assertThat(client.hasBlob("busybox", manifest().config().contentDigest())).isTrue();
        assertThat(client.hasBlob("busybox", Digest.of("not there".getBytes()))).isFalse();
        assertThat(client.hasBlob("no/such-repo", Digest.of("not there".getBytes()))).isFalse();
    }

    @Test
    void pushesBlobsAndManifestThenReadsThemBack() throws IOException {
        Manifest manifest = manifest();
        List<Descriptor> blobs = new ArrayList<>(manifest.layers());
        blobs.add(manifest.config());
        for (Descriptor d : blobs) {
            client.pushBlob("pushed/busybox", d, blob(d.contentDigest()));
        }
        byte[] body = Files.readAllBytes(blob(manifestDigest));

        Digest pushed = client.pushManifest("pushed/busybox", "v1", MediaType.OCI_MANIFEST, body);

        assertThat(pushed).isEqualTo(manifestDigest);
        assertThat(client.fetchManifest("pushed/busybox", "v1").digest()).isEqualTo(manifestDigest);
        for (Descriptor d : blobs) {
            assertThat(client.hasBlob("pushed/busybox", d.contentDigest())).isTrue();
        }
        // an independent client agrees
        String inspect = Command.run("skopeo", "inspect", "--raw", "--tls-verify=false",
                "docker://" + registry.ref("pushed/busybox", "v1"));
        assertThat(Digest.of(inspect.getBytes())).isEqualTo(manifestDigest);
        Command.run("skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
                "docker://" + registry.ref("pushed/busybox", "v1"), "oci:" + work.resolve("copied") + ":v1");
    }

    @Test
    void pushingABlobTheRegistryHasIsANoOp() throws IOException {
        Descriptor config = manifest().config();

        client.pushBlob("busybox", config, blob(config.contentDigest()));

        assertThat(client.hasBlob("busybox", config.contentDigest())).isTrue();
    }

    @Test
    void pushesAFreshBlobWhoseDigestTheRegistryChecks() throws IOException {
        Path file = work.resolve("fresh.bin");
        byte[] content = ("fresh blob " + System.nanoTime()).getBytes();
        Files.write(file, content);
        Descriptor right = new Descriptor(MediaType.OCI_LAYER, Digest.of(content), content.length);
        Descriptor wrong = new Descriptor(MediaType.OCI_LAYER, Digest.of("other".getBytes()), content.length);

        client.pushBlob("fresh", right, file);
        assertThatThrownBy(() -> client.pushBlob("fresh", wrong, file))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
                    assertThat(e.getMessage()).contains("DIGEST_INVALID").doesNotContain("\n");
                });

        ByteArrayOutputStream back = new ByteArrayOutputStream();
        client.fetchBlob("fresh", right, back, p -> { });
        assertThat(back.toByteArray()).isEqualTo(content);
    }

    @Test
    void unknownRepositoryIsNotFound() {
        assertThatThrownBy(() -> client.fetchManifest("no/such-image", "latest"))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.NOT_FOUND);
                    assertThat(e.getMessage())
                            .startsWith("image no/such-image:latest not found in " + registry.host())
                            .contains("check the name and tag").doesNotContain("\n");
                });
    }

    @Test
    void unknownTagIsNotFound() {
        assertThatThrownBy(() -> client.fetchManifest("busybox", "no-such-tag"))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.NOT_FOUND);
                    assertThat(e.getMessage()).contains("busybox:no-such-tag", "MANIFEST_UNKNOWN");
                });
    }

    @Test
    void unknownBlobIsNotFound() {
        Digest missing = Digest.of("missing".getBytes());
        assertThatThrownBy(() -> client.fetchBlob("busybox", new Descriptor(MediaType.OCI_LAYER, missing, 7),
                new ByteArrayOutputStream(), p -> { }))
                .isInstanceOfSatisfying(KilnException.class,
                        e -> assertThat(e.kind()).isEqualTo(KilnException.Kind.NOT_FOUND));
    }

    @Test
    void nothingListeningIsUnavailable() throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        String host = "127.0.0.1:" + port;
        RegistryClient nobody = RegistryClient.connect(host, new RegistryAccess(true, Credentials.none()));

        assertThatThrownBy(() -> nobody.fetchManifest("busybox", "latest"))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.UNAVAILABLE);
                    assertThat(e.getMessage()).isEqualTo("cannot reach registry " + host + ": connection refused"
                            + " (is it running? for plain HTTP use --insecure-registry " + host + ")");
                });
    }

    @Test
    void httpsToAPlainHttpRegistryNamesInsecureRegistry() {
        RegistryClient tls = RegistryClient.connect(registry.host(), new RegistryAccess(false, Credentials.none()));

        assertThatThrownBy(() -> tls.fetchManifest("busybox", "latest"))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.UNAVAILABLE);
                    assertThat(e.getMessage()).startsWith("TLS connection to registry " + registry.host())
                            .contains("--insecure-registry " + registry.host()).doesNotContain("\n");
                });
    }

    @Test
    void refusesNamesThatWouldLeaveTheRepositoryPath() {
        assertThatThrownBy(() -> client.fetchManifest("../v2/_catalog", "latest"))
                .isInstanceOfSatisfying(KilnException.class,
                        e -> assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT));
        assertThatThrownBy(() -> client.fetchManifest("busybox", "latest?x=1"))
                .isInstanceOfSatisfying(KilnException.class,
                        e -> assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT));
    }

    private static Manifest manifest() throws IOException {
        return JSON.readValue(blob(manifestDigest).toFile(), Manifest.class);
    }

    private static Path blob(Digest d) {
        return layout.resolve("blobs/sha256").resolve(d.hex());
    }
}
