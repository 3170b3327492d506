package dev.kiln.isolation;

import dev.kiln.KilnException;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class EtcFilesTest {

    private static final String HOST = "search lan\nnameserver 127.0.0.53\nnameserver 192.0.2.53\noptions edns0\n";

    @Test
    void resolvConfDropsLoopbackNameserversAndSaysSoWhenNoneRemain() {
        assertThat(EtcFiles.resolvConf("nameserver 127.0.0.53\noptions edns0\nsearch lan\n"))
                .isEqualTo("options edns0\nsearch lan\n# kiln: the host's resolv.conf names no nameserver reachable "
                        + "from a sandbox (only loopback\n# addresses or none), so DNS is not configured here.\n");
        assertThat(EtcFiles.resolvConf("nameserver ::1\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\n"))
                .isEqualTo("nameserver 10.0.0.2\nnameserver fe80::1%eth0\n");
        assertThat(EtcFiles.resolvConf("")).startsWith("# kiln:");
        assertThat(EtcFiles.hasUsableNameserver("nameserver 127.0.0.1\n")).isFalse();
        assertThat(EtcFiles.hasUsableNameserver("nameserver 10.255.255.53\n")).isTrue();
    }

    @Test
    void dnsFlagsReplaceTheHostsNameserversAndKeepItsSearchAndOptionsUnlessGiven() {
        SandboxNetwork dns = network(List.of("192.0.2.1", "192.0.2.2"), List.of(), List.of(), List.of());
        assertThat(EtcFiles.resolvConf(dns, HOST))
                .isEqualTo("search lan\nnameserver 192.0.2.1\nnameserver 192.0.2.2\noptions edns0\n");
        SandboxNetwork search = network(List.of(), List.of("corp.example"), List.of("ndots:2"), List.of());
        assertThat(EtcFiles.resolvConf(search, HOST))
                .isEqualTo("search corp.example\nnameserver 192.0.2.53\noptions ndots:2\n");
        assertThat(EtcFiles.resolvConf(network(List.of(), List.of(), List.of(), List.of()), HOST))
                .isEqualTo("search lan\nnameserver 192.0.2.53\noptions edns0\n");
    }

    @Test
    void hostsNamesTheAddressAndTheAddedHosts() {
        SandboxNetwork n = network(List.of(), List.of(), List.of(), List.of("db:192.0.2.7", "v6:2001:db8::1"))
                .attached("10.88.0.5", 16, "10.88.0.1", null);
        SandboxSpec spec = new SandboxSpec("0123456789abcdef", "web", "web", null, Path.of("/img"), false,
                Resources.UNLIMITED, java.util.Map.of(), List.of(), Path.of("/dir"), n);
        assertThat(EtcFiles.hosts(spec)).startsWith("127.0.0.1\tlocalhost\n")
                .contains("192.0.2.7\tdb\n", "2001:db8::1\tv6\n").endsWith("10.88.0.5\tweb\n");
        assertThat(EtcFiles.hosts("box")).endsWith("127.0.0.1\tbox\n");
    }

    @Test
    void aValueWithALineBreakNeverReachesAFile() {
        // issue 11: "--dns-search 'x\nnameserver 6.6.6.6'" wrote a nameserver of the caller's into resolv.conf
        for (SandboxNetwork n : List.of(
                network(List.of(), List.of("corp.example\nnameserver 6.6.6.6"), List.of(), List.of()),
                network(List.of(), List.of(), List.of("ndots:1\nnameserver 6.6.6.6"), List.of()),
                network(List.of(), List.of(), List.of("ndots:1 rotate"), List.of()),
                network(List.of("192.0.2.1\nnameserver 6.6.6.6"), List.of(), List.of(), List.of()))) {
            assertThatThrownBy(() -> EtcFiles.resolvConf(n, HOST)).isInstanceOf(KilnException.class)
                    .hasMessageNotContaining("\n");
        }
        SandboxNetwork hosts = network(List.of(), List.of(), List.of(), List.of("db\n6.6.6.6 evil:192.0.2.7"));
        SandboxSpec spec = new SandboxSpec("0123456789abcdef", "web", "web", null, Path.of("/img"), false,
                Resources.UNLIMITED, java.util.Map.of(), List.of(), Path.of("/dir"), hosts);
        assertThatThrownBy(() -> EtcFiles.hosts(spec)).isInstanceOf(KilnException.class);
        assertThatThrownBy(() -> EtcFiles.hostname("a\nb")).isInstanceOf(KilnException.class);
        assertThatThrownBy(() -> EtcFiles.hosts("../../x")).isInstanceOf(KilnException.class);
    }

    @Test
    void searchDotMeansNoSearchLineAsInDocker() {
        assertThat(EtcFiles.resolvConf(network(List.of(), List.of("."), List.of(), List.of()), HOST))
                .isEqualTo("nameserver 192.0.2.53\noptions edns0\n");
    }

    private static SandboxNetwork network(List<String> dns, List<String> search, List<String> options,
                                          List<String> hosts) {
        return new SandboxNetwork(SandboxNetwork.Mode.BRIDGE, Path.of("/var/run/netns/x"), null, 0, null, null,
                SandboxNetwork.DEFAULT_MTU, dns, search, options, hosts);
    }
}
