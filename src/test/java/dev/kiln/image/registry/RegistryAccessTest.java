package dev.kiln.image.registry;

import org.junit.jupiter.api.Test;

import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

class RegistryAccessTest {

    @Test
    void loopbackHostsSpeakPlainHttp() {
        for (String host : new String[] {"localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:5000",
                "127.1.2.3:80", "[::1]:5000", "::1"}) {
            assertThat(RegistryAccess.isLoopback(host)).as(host).isTrue();
        }
        for (String host : new String[] {"registry-1.docker.io", "128.0.0.1:5000", "127.0.0.256", "127.0.0",
                "localhost.example.com", "10.0.0.1:5000", "[::2]:5000"}) {
            assertThat(RegistryAccess.isLoopback(host)).as(host).isFalse();
        }
    }

    @Test
    void insecureRegistriesAreNamedExactly() {
        assertThat(RegistryAccess.forHost("reg.lan:5000", Set.of("reg.lan:5000"), Credentials.none()).plainHttp()).isTrue();
        assertThat(RegistryAccess.forHost("reg.lan:5001", Set.of("reg.lan:5000"), Credentials.none()).plainHttp()).isFalse();
        assertThat(RegistryAccess.forHost("localhost:5000", Set.of(), Credentials.none()).plainHttp()).isTrue();
    }
}
