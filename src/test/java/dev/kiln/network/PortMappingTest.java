package dev.kiln.network;

import dev.kiln.KilnException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Docker's {@code -p} forms, and the ones refused. */
class PortMappingTest {

    @Test
    void parsesDockersForms() {
        assertThat(PortMapping.parse("80")).isEqualTo(new PortMapping("", 0, 80, "tcp"));
        assertThat(PortMapping.parse("8080:80")).isEqualTo(new PortMapping("", 8080, 80, "tcp"));
        assertThat(PortMapping.parse("127.0.0.1:8080:80/udp")).isEqualTo(new PortMapping("127.0.0.1", 8080, 80, "udp"));
        assertThat(PortMapping.parse("127.0.0.1::80")).isEqualTo(new PortMapping("127.0.0.1", 0, 80, "tcp"));
        assertThat(PortMapping.parse("0.0.0.0:81:80").hostAddress()).isEqualTo("0.0.0.0");
        assertThat(PortMapping.parse("8080:80").toString()).isEqualTo("80/tcp -> 0.0.0.0:8080");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "abc", "80/sctp", "70000:80", "80:0", "1.2.3:80:80", "300.1.1.1:80:80", "[::1]:80:80",
            "a:b:c:d"})
    void refusesBadSpecs(String spec) {
        assertThatThrownBy(() -> PortMapping.parse(spec)).isInstanceOf(KilnException.class)
                .hasMessageStartingWith("invalid -p \"" + spec + "\"");
    }

    @Test
    void clashesOnTheSameHostPortAndOverlappingAddress() {
        PortMapping any = new PortMapping("", 8080, 80, "tcp");
        assertThat(any.clashesWith(new PortMapping("127.0.0.1", 8080, 81, "tcp"))).isTrue();
        assertThat(any.clashesWith(new PortMapping("", 8080, 80, "udp"))).isFalse();
        assertThat(new PortMapping("127.0.0.1", 8080, 80, "tcp")
                .clashesWith(new PortMapping("127.0.0.2", 8080, 80, "tcp"))).isFalse();
    }

    @Test
    void subnetsOverlap() {
        assertThat(Subnets.overlaps("10.88.0.0/16", "10.88.3.0/24")).isTrue();
        assertThat(Subnets.overlaps("10.88.0.0/16", "10.89.0.0/24")).isFalse();
        assertThat(Subnets.overlaps("192.0.2.0/24", "192.0.2.2/32")).isTrue();
    }
}
