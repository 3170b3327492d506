package dev.kiln.image.registry;

import dev.kiln.KilnException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Optional;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** How config.json entries are matched to hosts, as the Docker CLI matches them. */
class CredentialsTest {

    @TempDir
    Path dir;

    @Test
    void dockerHubUsesTheIndexKeyWhateverTheHostSpelling() throws IOException {
        write("""
                {"auths": {"https://index.docker.io/v1/": {"auth": "%s"}}}""".formatted(base64("hub:pw")));
        Credentials c = Credentials.fromDockerConfig(dir, List.of());

        for (String host : List.of("docker.io", "registry-1.docker.io", "index.docker.io")) {
            assertThat(c.lookup(host)).as(host).contains(new Credentials.Basic("hub", "pw"));
        }
        assertThat(c.lookup("ghcr.io")).isEmpty();
    }

    @Test
    void exactKeyWinsOverAKeyWithScheme() throws IOException {
        write("""
                {"auths": {"https://reg.lan:5000": {"auth": "%s"}, "reg.lan:5000": {"auth": "%s"}}}"""
                .formatted(base64("scheme:1"), base64("exact:2")));

        assertThat(Credentials.fromDockerConfig(dir, List.of()).lookup("reg.lan:5000"))
                .contains(new Credentials.Basic("exact", "2"));
        assertThat(Credentials.fromDockerConfig(dir, List.of()).lookup("reg.lan")).isEmpty();
    }

    @Test
    void passwordMayContainColons() throws IOException {
        write("""
                {"auths": {"reg.lan": {"auth": "%s"}}}""".formatted(base64("u:p:a:ss")));

        assertThat(Credentials.fromDockerConfig(dir, List.of()).lookup("reg.lan"))
                .contains(new Credentials.Basic("u", "p:a:ss"));
    }

    @Test
    void identityTokenIsMarked() throws IOException {
        write("""
                {"auths": {"reg.lan": {"username": "u", "identitytoken": "refresh-me"}}}""");

        Optional<Credentials.Basic> b = Credentials.fromDockerConfig(dir, List.of()).lookup("reg.lan");

        assertThat(b).hasValueSatisfying(basic -> {
            assertThat(basic.isIdentityToken()).isTrue();
            assertThat(basic.password()).isEqualTo("refresh-me");
            assertThat(basic.toString()).doesNotContain("refresh-me");
        });
    }

    @Test
    void missingConfigMeansNoCredentialsAndBrokenConfigSaysWhichFile() throws IOException {
        assertThat(Credentials.fromDockerConfig(dir.resolve("absent"), List.of()).lookup("reg.lan")).isEmpty();
        write("{not json");
        assertThatThrownBy(() -> Credentials.fromDockerConfig(dir, List.of()).lookup("reg.lan"))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
                    assertThat(e.getMessage()).contains(dir.resolve("config.json").toString()).doesNotContain("\n");
                });
    }

    @Test
    void explicitAndNone() {
        assertThat(Credentials.of("a", "b").lookup("any:1")).contains(new Credentials.Basic("a", "b"));
        assertThat(Credentials.none().lookup("any:1")).isEmpty();
    }

    private void write(String json) throws IOException {
        Files.writeString(dir.resolve("config.json"), json);
    }

    private static String base64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }
}
