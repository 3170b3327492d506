package dev.kiln.image.registry;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

class WwwAuthenticateTest {

    @Test
    void bearerWithQuotedCommaSeparatedScope() {
        var c = WwwAuthenticate.parse(List.of("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                + "scope=\"repository:library/busybox:pull,push\""));

        assertThat(c).containsExactly(new WwwAuthenticate.Challenge("bearer", Map.of(
                "realm", "https://auth.docker.io/token",
                "service", "registry.docker.io",
                "scope", "repository:library/busybox:pull,push")));
    }

    @Test
    void basicAndBearerInOneHeaderWithSpacesAndEscapes() {
        var c = WwwAuthenticate.parse(List.of("Basic realm=\"a \\\"quoted\\\" realm\" , Bearer realm=x, error=\"insufficient_scope\""));

        assertThat(c).containsExactly(
                new WwwAuthenticate.Challenge("basic", Map.of("realm", "a \"quoted\" realm")),
                new WwwAuthenticate.Challenge("bearer", Map.of("realm", "x", "error", "insufficient_scope")));
    }

    @Test
    void severalHeadersSchemeCaseAndBareSchemes() {
        var c = WwwAuthenticate.parse(List.of("NEGOTIATE", "BASIC Realm=registry"));

        assertThat(c).containsExactly(
                new WwwAuthenticate.Challenge("negotiate", Map.of()),
                new WwwAuthenticate.Challenge("basic", Map.of("realm", "registry")));
    }

    @Test
    void token68AndGarbageDoNotLoop() {
        assertThat(WwwAuthenticate.parse(List.of("Negotiate abc=="))).containsExactly(
                new WwwAuthenticate.Challenge("negotiate", Map.of("", "abc==")));
        assertThat(WwwAuthenticate.parse(List.of("", ",,,", "\"x\"", "Bearer realm=\"unterminated"))).containsExactly(
                new WwwAuthenticate.Challenge("bearer", Map.of("realm", "unterminated")));
    }
}
