package dev.kiln.isolation;

import dev.kiln.KilnException;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.UnaryOperator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The values kiln writes into a sandbox's /etc files: one token of their kind each, refused on one line if not. */
class EtcValuesTest {

    @Test
    void hostnamesFollowDockersRfc1123Rule() {
        accepts(EtcValues::hostname, "web", "a", "web-1", "db.internal", "A1.b-2.C3", "x".repeat(63));
        refuses(EtcValues::hostname, "", "a\nb", "../../x", "-web", "web-", "a..b", ".a", "a.", "a b", "a_b",
                "a\u0000b", "x".repeat(64), "h".repeat(300), "web;id", "é");
    }

    @Test
    void searchDomainsAreDnsNames() {
        accepts(EtcValues::searchDomain, "corp.example", "example", "a-b.example.", ".", "x1.y2");
        refuses(EtcValues::searchDomain, "", "corp.example\nnameserver 6.6.6.6", "a b", "-a.example", "a..b",
                "123.456", "a".repeat(64) + ".example", "ex ample", "example\t", "under_score.example");
    }

    @Test
    void dnsOptionsAreNameOrNameColonValue() {
        accepts(EtcValues::dnsOption, "ndots:2", "timeout:1", "edns0", "single-request-reopen", "trust-ad");
        refuses(EtcValues::dnsOption, "", "ndots:1\nnameserver 6.6.6.6", "ndots:1 rotate", ":2", "ndots:",
                "a:b:c", "-x", "x".repeat(80));
    }

    @Test
    void nameserversAndAddedHostsAreAddresses() {
        accepts(EtcValues::nameserver, "192.0.2.53", "2001:db8::1", "::1");
        refuses(EtcValues::nameserver, "", "not-an-ip", "192.0.2.53\nnameserver 6.6.6.6", "192.0.2.53 ",
                "1.2.3.4.5");
        accepts(EtcValues::extraHost, "db:192.0.2.7", "v6:2001:db8::1", "host.docker_internal:10.0.0.1");
        refuses(EtcValues::extraHost, "db", ":192.0.2.7", "db:nowhere", "db\n6.6.6.6 evil:192.0.2.7",
                "d b:192.0.2.7", "db:192.0.2.7\n6.6.6.6 evil", "db:192.0.2.7 evil");
    }

    private static void accepts(UnaryOperator<String> check, String... values) {
        for (String v : values) {
            assertThat(check.apply(v)).as(v).isEqualTo(v);
        }
    }

    private static void refuses(UnaryOperator<String> check, String... values) {
        for (String v : List.of(values)) {
            assertThatThrownBy(() -> check.apply(v)).as(v.replace("\n", "\\n"))
                    .isInstanceOfSatisfying(KilnException.class, e -> {
                        assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
                        assertThat(e.getMessage()).doesNotContain("\n").doesNotContain("\u0000");
                    });
        }
    }
}
