package dev.kiln.image.registry;

import dev.kiln.KilnException;
import dev.kiln.image.Digest;
import dev.kiln.image.MediaType;
import dev.kiln.testing.Fixtures;
import dev.kiln.testing.OciLayout;
import dev.kiln.testing.TestRegistry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Basic auth against a real docker-registry with htpasswd, credentials found the ways Docker finds them. */
class RegistryAuthTest {

    private static final String USER = "kiln";
    private static final String PASSWORD = "s3cret pass:word";

    @TempDir
    static Path work;
    private static TestRegistry registry;
    private static Digest manifestDigest;

    @BeforeAll
    static void pushFixture() {
        registry = TestRegistry.startWithBasicAuth(USER, PASSWORD);
        var busybox = Fixtures.busybox(registry, work);
        manifestDigest = Digest.parse(OciLayout.descriptor(Path.of(busybox.ociLayoutDir()), busybox.tag())
                .get("digest").asText());
    }

    @AfterAll
    static void stop() {
        if (registry != null) {
            registry.close();
        }
    }

    @Test
    void anonymousIsUnauthorized() {
        assertThatThrownBy(() -> client(Credentials.none()).fetchManifest("busybox", "latest"))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.UNAUTHORIZED);
                    assertThat(e.getMessage()).startsWith("authentication to " + registry.host() + " failed")
                            .contains("kiln login " + registry.host(), "~/.docker/config.json")
                            .doesNotContain("\n");
                });
    }

    @Test
    void wrongPasswordIsUnauthorizedAndNamesTheUser() {
        assertThatThrownBy(() -> client(Credentials.of(USER, "wrong")).fetchManifest("busybox", "latest"))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.UNAUTHORIZED);
                    assertThat(e.getMessage()).contains("user \"kiln\"").doesNotContain("wrong");
                });
    }

    @Test
    void explicitCredentialsPullAndPush() {
        RegistryClient client = client(Credentials.of(USER, PASSWORD));

        assertThat(client.fetchManifest("busybox", "latest").digest()).isEqualTo(manifestDigest);
        byte[] body = client.fetchManifest("busybox", "latest").bytes();
        assertThat(client.pushManifest("busybox", "again", MediaType.OCI_MANIFEST, body)).isEqualTo(manifestDigest);
        assertThat(client.hasBlob("busybox", manifestDigest)).isFalse(); // manifests are not blobs of the repo
    }

    @Test
    void dockerConfigAuthEntry() throws IOException {
        Path dir = configDir("""
                {"auths": {"%s": {"auth": "%s"}}}""".formatted(registry.host(), base64(USER + ":" + PASSWORD)));

        assertThat(client(Credentials.fromDockerConfig(dir)).fetchManifest("busybox", "latest").digest())
                .isEqualTo(manifestDigest);
    }

    @Test
    void dockerConfigKeyWithSchemeAndPathAndPlainFields() throws IOException {
        Path dir = configDir("""
                {"auths": {"other.example:5000": {"auth": "%s"},
                           "http://%s/v2/": {"username": "%s", "password": "%s"}}}"""
                .formatted(base64("x:y"), registry.host(), USER, PASSWORD));

        assertThat(client(Credentials.fromDockerConfig(dir)).fetchManifest("busybox", "latest").digest())
                .isEqualTo(manifestDigest);
    }

    @Test
    void credentialHelperPerHost() throws IOException {
        Path helpers = helperDir("""
                #!/bin/sh
                read server
                echo "$server" > "$(dirname "$0")/asked"
                printf '{"ServerURL":"%%s","Username":"%s","Secret":"%s"}' "$server"
                """.formatted(USER, PASSWORD));
        Path dir = configDir("""
                {"auths": {"%s": {}}, "credHelpers": {"%s": "kilntest"}}""".formatted(registry.host(), registry.host()));

        RegistryClient client = client(Credentials.fromDockerConfig(dir, List.of(helpers)));

        assertThat(client.fetchManifest("busybox", "latest").digest()).isEqualTo(manifestDigest);
        assertThat(Files.readString(helpers.resolve("asked")).strip()).isEqualTo(registry.host());
    }

    @Test
    void credsStoreHelper() throws IOException {
        Path helpers = helperDir("""
                #!/bin/sh
                cat >/dev/null
                echo '{"Username":"%s","Secret":"%s"}'
                """.formatted(USER, PASSWORD));
        Path dir = configDir("""
                {"credsStore": "kilntest"}""");

        assertThat(client(Credentials.fromDockerConfig(dir, List.of(helpers))).fetchManifest("busybox", "latest")
                .digest()).isEqualTo(manifestDigest);
    }

    @Test
    void helperWithoutCredentialsFallsBackToAuthsThenToAnonymous() throws IOException {
        Path helpers = helperDir("""
                #!/bin/sh
                echo "credentials not found in native keychain"
                exit 1
                """);
        Path withAuths = configDir("""
                {"credsStore": "kilntest", "auths": {"%s": {"auth": "%s"}}}"""
                .formatted(registry.host(), base64(USER + ":" + PASSWORD)));
        Path without = configDir("""
                {"credsStore": "kilntest"}""");

        assertThat(client(Credentials.fromDockerConfig(withAuths, List.of(helpers)))
                .fetchManifest("busybox", "latest").digest()).isEqualTo(manifestDigest);
        assertThatThrownBy(() -> client(Credentials.fromDockerConfig(without, List.of(helpers)))
                .fetchManifest("busybox", "latest"))
                .isInstanceOfSatisfying(KilnException.class,
                        e -> assertThat(e.kind()).isEqualTo(KilnException.Kind.UNAUTHORIZED));
    }

    @Test
    void failingHelperIsReportedInOneLine() throws IOException {
        Path helpers = helperDir("""
                #!/bin/sh
                echo "keyring locked" >&2
                exit 3
                """);
        Path dir = configDir("""
                {"credHelpers": {"%s": "kilntest"}}""".formatted(registry.host()));

        assertThatThrownBy(() -> client(Credentials.fromDockerConfig(dir, List.of(helpers)))
                .fetchManifest("busybox", "latest"))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.UNAVAILABLE);
                    assertThat(e.getMessage()).contains("docker-credential-kilntest", "exit 3", "keyring locked")
                            .doesNotContain("\n");
                });
    }

    @Test
    void missingHelperIsAnInvalidConfig() throws IOException {
        Path dir = configDir("""
                {"credsStore": "absent"}""");

        assertThatThrownBy(() -> client(Credentials.fromDockerConfig(dir, List.of(work)))
                .fetchManifest("busybox", "latest"))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
                    assertThat(e.getMessage()).contains("docker-credential-absent");
                });
    }

    private static RegistryClient client(Credentials credentials) {
        return RegistryClient.connect(registry.host(), new RegistryAccess(true, credentials));
    }

    private static Path configDir(String json) throws IOException {
        Path dir = Files.createTempDirectory(work, "docker-config-");
        Files.writeString(dir.resolve("config.json"), json);
        return dir;
    }

    private static Path helperDir(String script) throws IOException {
        Path dir = Files.createTempDirectory(work, "helpers-");
        Path helper = dir.resolve("docker-credential-kilntest");
        Files.writeString(helper, script);
        Files.setPosixFilePermissions(helper, PosixFilePermissions.fromString("rwxr-xr-x"));
        return dir;
    }

    private static String base64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }
}
