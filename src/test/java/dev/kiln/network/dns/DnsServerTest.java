package dev.kiln.network.dns;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The resolver over real UDP on loopback: local names, forwarding to an upstream the test runs (a socket on a
 * 127.x address, port 53, named by a resolv.conf the test writes), SERVFAIL without one, and hostile packets.
 */
class DnsServerTest {

    @TempDir
    Path dir;

    static final Map<String, List<Inet4Address>> NAMES = Map.of("peer", List.of(v4("10.77.0.5")),
            "abcdef123456", List.of(v4("10.77.0.5")), "other", List.of(v4("10.77.0.6")));

    static Inet4Address v4(String literal) {
        return (Inet4Address) InetAddress.ofLiteral(literal);
    }

    @Test
    void answersSandboxNamesCaseInsensitivelyWithOrWithoutDotOrSearchDomain() throws Exception {
        Path conf = Files.writeString(dir.resolve("resolv.conf"), "search corp.example\n");
        try (DnsServer s = start(conf)) {
            for (String name : List.of("peer", "PEER.", "peer.corp.example", "AbCdEf123456")) {
                byte[] answer = ask(s, query(7, name, DnsMessage.TYPE_A));
                assertThat(rcode(answer)).as(name).isZero();
                assertThat(answerCount(answer)).as(name).isEqualTo(1);
                assertThat(Arrays.copyOfRange(answer, answer.length - 4, answer.length)).as(name)
                        .isEqualTo(new byte[] {10, 77, 0, 5});
                assertThat(id(answer)).isEqualTo(7);
            }
            byte[] aaaa = ask(s, query(8, "peer", 28));
            assertThat(rcode(aaaa)).isZero();
            assertThat(answerCount(aaaa)).isZero();
        }
    }

    @Test
    void answersFromTheTableItWasLastGivenAndNothingElse() throws Exception {
        try (DnsServer s = start(Files.writeString(dir.resolve("resolv.conf"), ""))) {
            s.names(Map.of("moved", List.of(v4("10.77.0.9"))));
            byte[] answer = ask(s, query(3, "moved", DnsMessage.TYPE_A));
            assertThat(Arrays.copyOfRange(answer, answer.length - 4, answer.length)).isEqualTo(new byte[] {10, 77, 0, 9});
            // "peer" was in the table the server started with, no longer: no upstream, so SERVFAIL
            assertThat(rcode(ask(s, query(4, "peer", DnsMessage.TYPE_A)))).isEqualTo(DnsMessage.SERVFAIL);
        }
    }

    @Test
    void parsesResolvConfAgainOnlyWhenItsMtimeChanges() throws Exception {
        Path conf = Files.writeString(dir.resolve("resolv.conf"), "search one.example\n");
        java.nio.file.attribute.FileTime mtime = Files.getLastModifiedTime(conf);
        try (DnsServer s = start(conf)) {
            assertThat(answerCount(ask(s, query(5, "peer.one.example", DnsMessage.TYPE_A)))).isEqualTo(1);
            // same size and mtime: not read again (a per-packet read is what a query flood turned into disk work)
            Files.writeString(conf, "search two.example\n");
            Files.setLastModifiedTime(conf, mtime);
            Thread.sleep(1100);
            assertThat(answerCount(ask(s, query(6, "peer.one.example", DnsMessage.TYPE_A)))).isEqualTo(1);
            assertThat(rcode(ask(s, query(7, "peer.two.example", DnsMessage.TYPE_A)))).isEqualTo(DnsMessage.SERVFAIL);
            Files.setLastModifiedTime(conf, java.nio.file.attribute.FileTime.fromMillis(mtime.toMillis() + 5000));
            Thread.sleep(1100);
            assertThat(answerCount(ask(s, query(8, "peer.two.example", DnsMessage.TYPE_A)))).isEqualTo(1);
        }
    }

    @Test
    void forwardsOtherNamesToTheHostsResolverAndFailsWithoutOne() throws Exception {
        InetAddress upstreamAddress = InetAddress.getByName("127.53." + ThreadLocalRandom.current().nextInt(1, 255)
                + "." + ThreadLocalRandom.current().nextInt(1, 255));
        try (DatagramSocket upstream = new DatagramSocket(new InetSocketAddress(upstreamAddress, 53))) {
            Path conf = Files.writeString(dir.resolve("resolv.conf"), "nameserver " + upstreamAddress.getHostAddress()
                    + "\n");
            Thread.ofVirtual().start(() -> {
                try {
                    byte[] buf = new byte[512];
                    DatagramPacket in = new DatagramPacket(buf, buf.length);
                    upstream.receive(in);
                    // the upstream's own answer: the query echoed with QR set and one A record 192.0.2.99
                    ByteArrayOutputStream out = new ByteArrayOutputStream();
                    out.write(buf, 0, in.getLength());
                    byte[] a = out.toByteArray();
                    a[2] |= (byte) 0x80;
                    a[7] = 1;
                    out.write(new byte[] {(byte) 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, (byte) 192, 0, 2, 99});
                    byte[] full = out.toByteArray();
                    System.arraycopy(a, 0, full, 0, 12);
                    upstream.send(new DatagramPacket(full, full.length, in.getSocketAddress()));
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            try (DnsServer s = start(conf)) {
                byte[] answer = ask(s, query(9, "example.test", DnsMessage.TYPE_A));
                assertThat(rcode(answer)).isZero();
                assertThat(Arrays.copyOfRange(answer, answer.length - 4, answer.length))
                        .isEqualTo(new byte[] {(byte) 192, 0, 2, 99});
            }
        }
        // nothing listens there now: the host refuses (ICMP), so the resolver says SERVFAIL
        Path conf = Files.writeString(dir.resolve("resolv.conf"), "nameserver " + upstreamAddress.getHostAddress()
                + "\n");
        try (DnsServer s = start(conf)) {
            assertThat(rcode(ask(s, query(10, "example.test", DnsMessage.TYPE_A)))).isEqualTo(DnsMessage.SERVFAIL);
        }
    }

    @Test
    void capsForwardsPerSourceAndBoundsEachForwardToThreeSeconds() throws Exception {
        List<DatagramSocket> silent = new java.util.ArrayList<>(); // upstreams that read nothing and answer nothing
        StringBuilder conf = new StringBuilder();
        try {
            for (int i = 0; i < 3; i++) {
                silent.add(new DatagramSocket(new InetSocketAddress(randomLoopback(), 53)));
                conf.append("nameserver ").append(silent.getLast().getLocalAddress().getHostAddress()).append('\n');
            }
            try (DnsServer s = start(Files.writeString(dir.resolve("resolv.conf"), conf));
                 DatagramSocket greedy = new DatagramSocket(new InetSocketAddress(v4("127.0.0.1"), 0));
                 DatagramSocket other = new DatagramSocket(new InetSocketAddress(v4("127.0.0.2"), 0))) {
                for (int id = 1; id <= DnsServer.MAX_FORWARDS_PER_SOURCE + 1; id++) {
                    send(greedy, s, query(id, "example.test", DnsMessage.TYPE_A));
                }
                byte[] refused = receive(greedy, 1500);
                assertThat(id(refused)).isEqualTo(DnsServer.MAX_FORWARDS_PER_SOURCE + 1);
                assertThat(rcode(refused)).isEqualTo(DnsMessage.REFUSED);
                // another source is still forwarded; three silent upstreams take 3 s in all, not 3 × 2 s
                long t0 = System.nanoTime();
                send(other, s, query(20, "example.test", DnsMessage.TYPE_A));
                assertThat(rcode(receive(other, 5000))).isEqualTo(DnsMessage.SERVFAIL);
                assertThat((System.nanoTime() - t0) / 1_000_000).isBetween(2500L, 4000L);
                for (int i = 0; i < DnsServer.MAX_FORWARDS_PER_SOURCE; i++) {
                    assertThat(rcode(receive(greedy, 1500))).isEqualTo(DnsMessage.SERVFAIL);
                }
                // their slots are back
                send(greedy, s, query(21, "example.test", DnsMessage.TYPE_A));
                assertThat(rcode(receive(greedy, 5000))).isEqualTo(DnsMessage.SERVFAIL);
            }
        } finally {
            silent.forEach(DatagramSocket::close);
        }
    }

    @Test
    void asksUpstreamWithARandomIdAndRelaysOnlyTheReplyToTheQuestion() throws Exception {
        List<Integer> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        try (DatagramSocket upstream = upstream(q -> {
            int id = id(q);
            seen.add(id);
            // a forger's tries first: the right id with another question, the right question with another id
            return List.of(reply(id, "evil.test", 1), reply(id ^ 1, "example.test", 1), reply(id, "example.test", 1));
        })) {
            try (DnsServer s = start(conf(upstream))) {
                for (int i = 0; i < 2; i++) {
                    byte[] answer = ask(s, query(0x4242, "example.test", DnsMessage.TYPE_A));
                    assertThat(id(answer)).isEqualTo(0x4242);
                    assertThat(answer).isEqualTo(withId(reply(0, "example.test", 1), 0x4242));
                }
            }
        }
        assertThat(seen).hasSize(2).isNotEqualTo(List.of(0x4242, 0x4242));
    }

    @Test
    void relaysNoMoreThanTheClientAcceptsAndSetsTcWhenCutting() throws Exception {
        try (DatagramSocket upstream = upstream(q -> List.of(reply(id(q), "example.test", 40)));
             DnsServer s = start(conf(upstream))) {
            byte[] plain = query(30, "example.test", DnsMessage.TYPE_A);
            byte[] cut = ask(s, plain);
            assertThat(cut).hasSize(plain.length); // header and question only
            assertThat(cut[2] & 0x02).as("TC").isNotZero();
            assertThat(answerCount(cut)).isZero();
            assertThat(Arrays.copyOfRange(cut, 12, cut.length)).isEqualTo(Arrays.copyOfRange(plain, 12, plain.length));
            // with EDNS and a 4096-byte buffer the whole 40-record answer (652 bytes) fits
            ByteArrayOutputStream edns = new ByteArrayOutputStream();
            edns.writeBytes(query(31, "example.test", DnsMessage.TYPE_A));
            edns.writeBytes(new byte[] {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0});
            byte[] ednsQuery = edns.toByteArray();
            ednsQuery[11] = 1; // ARCOUNT
            byte[] full = ask(s, ednsQuery);
            assertThat(full.length).isGreaterThan(DnsMessage.PLAIN_UDP);
            assertThat(answerCount(full)).isEqualTo(40);
            assertThat(full[2] & 0x02).isZero();
        }
    }

    @Test
    void dropsQueriesFromTheGatewaysOwnAddress() throws Exception {
        try (DnsServer s = start(Files.writeString(dir.resolve("resolv.conf"), ""));
             DatagramSocket self = new DatagramSocket(new InetSocketAddress(s.address().getAddress(), 0))) {
            send(self, s, query(40, "peer", DnsMessage.TYPE_A));
            assertThatThrownBy(() -> receive(self, 1000)).isInstanceOf(SocketTimeoutException.class);
            assertThat(answerCount(ask(s, query(41, "peer", DnsMessage.TYPE_A)))).isEqualTo(1);
        }
    }

    @Test
    void hostilePacketsGetFormerrOrNothingAndTheServerKeepsAnswering() throws Exception {
        try (DnsServer s = start(Files.writeString(dir.resolve("resolv.conf"), ""))) {
            byte[] loop = query(11, "peer", DnsMessage.TYPE_A);
            loop[12] = (byte) 0xC0; // a pointer to itself
            loop[13] = 12;
            assertThat(rcode(ask(s, loop))).isEqualTo(DnsMessage.FORMERR);
            byte[] longLabel = query(12, "peer", DnsMessage.TYPE_A);
            longLabel[12] = 63; // claims 63 bytes where there are 10
            assertThat(rcode(ask(s, longLabel))).isEqualTo(DnsMessage.FORMERR);
            byte[] response = query(13, "peer", DnsMessage.TYPE_A);
            response[2] |= (byte) 0x80; // a response: never answered
            assertThatThrownBy(() -> ask(s, response)).isInstanceOf(SocketTimeoutException.class);
            assertThatThrownBy(() -> ask(s, new byte[5])).isInstanceOf(SocketTimeoutException.class);
            assertThat(answerCount(ask(s, query(14, "peer", DnsMessage.TYPE_A)))).isEqualTo(1);
        }
    }

    @Test
    void refusesQueriesFromOutsideTheNetwork() throws Exception {
        try (DnsServer s = DnsServer.start((Inet4Address) InetAddress.ofLiteral("127.0.0.1"), 0,
                source -> false, Files.writeString(dir.resolve("resolv.conf"), ""))) {
            assertThatThrownBy(() -> ask(s, query(15, "peer", DnsMessage.TYPE_A)))
                    .isInstanceOf(SocketTimeoutException.class);
        }
    }

    @Test
    void parsesABackwardPointerAndRejectsForwardOnes() throws Exception {
        byte[] q = query(1, "peer", DnsMessage.TYPE_A);
        DnsMessage.Query parsed = DnsMessage.parse(q, q.length);
        assertThat(parsed.name()).isEqualTo("peer");
        assertThat(parsed.questionEnd()).isEqualTo(q.length);
        byte[] forward = q.clone();
        forward[12] = (byte) 0xC0;
        forward[13] = 40;
        assertThatThrownBy(() -> DnsMessage.parse(forward, forward.length)).isInstanceOf(DnsMessage.Malformed.class);
        assertThat(DnsMessage.parse(q, 11)).isNull();
    }

    // ---- helpers ----

    /** A server on a 127.53.x.y "gateway", so the test's clients (127.0.0.1) are not the gateway itself. */
    private DnsServer start(Path conf) throws Exception {
        DnsServer s = DnsServer.start((Inet4Address) randomLoopback(), 0, source -> source.isLoopbackAddress(), conf);
        s.names(NAMES);
        return s;
    }

    static byte[] query(int id, String name, int type) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) (id >> 8), (byte) id, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0});
        for (String label : name.split("\\.")) {
            if (!label.isEmpty()) {
                out.write(label.length());
                out.writeBytes(label.getBytes(StandardCharsets.US_ASCII));
            }
        }
        out.write(0);
        out.writeBytes(new byte[] {0, (byte) type, 0, 1});
        return out.toByteArray();
    }

    private Path conf(DatagramSocket upstream) throws Exception {
        return Files.writeString(dir.resolve("resolv.conf"), "nameserver "
                + upstream.getLocalAddress().getHostAddress() + "\n");
    }

    /** An upstream on a 127.53.x.y address, port 53, sending {@code replies} to every query until closed. */
    static DatagramSocket upstream(java.util.function.Function<byte[], List<byte[]>> replies) throws Exception {
        DatagramSocket u = new DatagramSocket(new InetSocketAddress(randomLoopback(), 53));
        Thread.ofVirtual().start(() -> {
            while (!u.isClosed()) {
                try {
                    byte[] buf = new byte[4096];
                    DatagramPacket in = new DatagramPacket(buf, buf.length);
                    u.receive(in);
                    for (byte[] r : replies.apply(Arrays.copyOf(buf, in.getLength()))) {
                        u.send(new DatagramPacket(r, r.length, in.getSocketAddress()));
                    }
                } catch (Exception e) {
                    return; // closed
                }
            }
        });
        return u;
    }

    /** An upstream's answer: {@code count} A records 192.0.2.1, .2, … for {@code name}. */
    static byte[] reply(int id, String name, int count) {
        byte[] q = query(id, name, DnsMessage.TYPE_A);
        q[2] |= (byte) 0x80;
        q[3] |= (byte) 0x80;
        q[7] = (byte) count;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(q);
        for (int i = 1; i <= count; i++) {
            out.writeBytes(new byte[] {(byte) 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, (byte) 192, 0, 2, (byte) i});
        }
        return out.toByteArray();
    }

    static byte[] withId(byte[] m, int id) {
        byte[] c = m.clone();
        c[0] = (byte) (id >> 8);
        c[1] = (byte) id;
        return c;
    }

    static InetAddress randomLoopback() {
        return v4("127.53." + ThreadLocalRandom.current().nextInt(1, 255) + "."
                + ThreadLocalRandom.current().nextInt(1, 255));
    }

    static void send(DatagramSocket c, DnsServer s, byte[] query) throws Exception {
        c.send(new DatagramPacket(query, query.length, s.address()));
    }

    static byte[] receive(DatagramSocket c, int timeoutMillis) throws Exception {
        c.setSoTimeout(timeoutMillis);
        byte[] buf = new byte[65535];
        DatagramPacket in = new DatagramPacket(buf, buf.length);
        c.receive(in);
        return Arrays.copyOf(buf, in.getLength());
    }

    static byte[] ask(DnsServer s, byte[] query) throws Exception {
        try (DatagramSocket c = new DatagramSocket()) {
            c.setSoTimeout(1500); // a local answer takes milliseconds; a forward to 127.x fails as fast
            c.send(new DatagramPacket(query, query.length, s.address()));
            byte[] buf = new byte[1500];
            DatagramPacket in = new DatagramPacket(buf, buf.length);
            c.receive(in);
            return Arrays.copyOf(buf, in.getLength());
        }
    }

    static int rcode(byte[] m) {
        return m[3] & 0xF;
    }

    static int id(byte[] m) {
        return ((m[0] & 0xFF) << 8) | (m[1] & 0xFF);
    }

    static int answerCount(byte[] m) {
        return ((m[6] & 0xFF) << 8) | (m[7] & 0xFF);
    }
}
