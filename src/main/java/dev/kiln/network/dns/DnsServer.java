package dev.kiln.network.dns;

import dev.kiln.KilnLog;

import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.function.Predicate;

/**
 * The embedded resolver of one user-defined network, as Docker's: UDP port 53 on the network's gateway address (never
 * a wildcard address, so it serves only that bridge), A records for the running sandboxes on the network by name,
 * hostname or short id, every other name forwarded to the host's resolvers. kilnd runs on the host, so the host's
 * loopback resolvers (systemd-resolved, dnsmasq) are reachable from here although not from a sandbox: that is why the
 * sandboxes ask kilnd rather than the host's resolv.conf.
 * <p>
 * One virtual thread receives every query of the network, so it does no disk or database work per packet: local names
 * come from a table the engine replaces whenever a sandbox on the network starts, stops, is renamed or removed
 * ({@link #names}), and the host's resolv.conf is parsed again only when its mtime or size changes, looked at no
 * more than once a second.
 */
public final class DnsServer implements AutoCloseable {
    private static final KilnLog LOG = KilnLog.of(DnsServer.class);

    static final Path HOST_RESOLV_CONF = Path.of("/etc/resolv.conf");
    private static final Duration UPSTREAM_TIMEOUT = Duration.ofSeconds(2);
    /** All of one forward, every upstream included: bounds how long it holds a slot (stub resolvers retry by 5 s). */
    private static final Duration FORWARD_BUDGET = Duration.ofSeconds(3);
    /** How stale the parsed resolv.conf may be: a stat at most this often, not per packet. */
    private static final long RESOLV_CONF_CHECK_NANOS = Duration.ofSeconds(1).toNanos();
    /** Room for any query a stub sends; larger datagrams are cut here and then fail to parse. */
    private static final int MAX_QUERY = 4096;
    private static final java.security.SecureRandom RANDOM = new java.security.SecureRandom();
    /** Forwards in flight; beyond that queries are dropped (the client retries) rather than piling up threads. */
    private static final int MAX_FORWARDS = 64;
    /** Forwards in flight per source address, so one sandbox cannot take all of the above; beyond it, REFUSED. */
    static final int MAX_FORWARDS_PER_SOURCE = 4;

    private final DatagramSocket socket;
    private final Predicate<InetAddress> allowed;
    private final Path resolvConf;
    /** Sandbox name (lower case) → addresses; replaced whole, never changed in place, so the loop reads it unlocked. */
    private volatile Map<String, List<Inet4Address>> names = Map.of();
    /** The tables of sandboxes on more networks than this one, by their address here (see {@link #names(Map, Map)}). */
    private volatile Map<InetAddress, Map<String, List<Inet4Address>>> namesBySource = Map.of();
    // the parsed resolv.conf and what it was parsed from; only the receive loop touches these
    private HostResolvers host = new HostResolvers(List.of(), List.of());
    private Object hostVersion;
    private long hostCheckedAt;
    private final Semaphore forwards = new Semaphore(MAX_FORWARDS);
    private final Map<InetAddress, Integer> forwardsBySource = new ConcurrentHashMap<>();
    private final Thread loop;

    private DnsServer(DatagramSocket socket, Predicate<InetAddress> allowed, Path resolvConf) {
        this.socket = socket;
        this.allowed = allowed;
        this.resolvConf = resolvConf;
        this.loop = Thread.ofVirtual().name("kilnd-dns-" + socket.getLocalAddress().getHostAddress()).start(this::serve);
    }

    /**
     * Listens on {@code address}:{@code port} and answers queries whose source {@code allowed} accepts (the network's
     * subnet: the host accepts packets for the gateway address on any interface, so the source is what keeps the
     * resolver from being an open forwarder to anyone who can route to the host).
     */
    public static DnsServer start(Inet4Address address, int port, Predicate<InetAddress> allowed) throws IOException {
        return start(address, port, allowed, HOST_RESOLV_CONF);
    }

    static DnsServer start(Inet4Address address, int port, Predicate<InetAddress> allowed, Path resolvConf)
            throws IOException {
        DatagramSocket s = new DatagramSocket(null);
        try {
            s.bind(new InetSocketAddress(address, port));
        } catch (IOException e) {
            s.close();
            throw e;
        }
        return new DnsServer(s, allowed, resolvConf);
    }

    /** From now on answers these names (lower case, without a trailing dot) with these addresses. */
    public void names(Map<String, List<Inet4Address>> table) {
        names(table, Map.of());
    }

    /**
     * {@link #names(Map)}, and for a query from one of {@code bySource}'s addresses that address's own table: a
     * sandbox on several networks resolves the names of all of them (as Docker's embedded DNS does), whichever
     * network's resolver it asks.
     */
    public void names(Map<String, List<Inet4Address>> table, Map<InetAddress, Map<String, List<Inet4Address>>> bySource) {
        this.namesBySource = Map.copyOf(bySource);
        this.names = Map.copyOf(table);
    }

    public InetSocketAddress address() {
        return (InetSocketAddress) socket.getLocalSocketAddress();
    }

    private void serve() {
        byte[] buf = new byte[MAX_QUERY];
        while (!socket.isClosed()) {
            DatagramPacket in = new DatagramPacket(buf, buf.length);
            try {
                socket.receive(in);
            } catch (IOException e) {
                if (socket.isClosed()) {
                    return;
                }
                continue;
            }
            // the socket is bound to the gateway, so only datagrams for it arrive; their source must be a sandbox's
            // address: in the subnet, and not the gateway's own (which the host, not a sandbox, would use)
            if (in.getAddress().equals(socket.getLocalAddress()) || !allowed.test(in.getAddress())) {
                continue;
            }
            byte[] packet = java.util.Arrays.copyOf(buf, in.getLength());
            InetSocketAddress client = (InetSocketAddress) in.getSocketAddress();
            try {
                handle(packet, client);
            } catch (RuntimeException e) {
                // a bug must not stop the resolver for the whole network; this query goes unanswered
                LOG.error("dns: " + e, e);
            }
        }
    }

    private void handle(byte[] packet, InetSocketAddress client) {
        DnsMessage.Query q;
        try {
            q = DnsMessage.parse(packet, packet.length);
        } catch (DnsMessage.Malformed e) {
            send(DnsMessage.formatError(e.id), client);
            return;
        }
        if (q == null) {
            return;
        }
        if (q.opcode() != 0) {
            send(DnsMessage.error(packet, q, DnsMessage.NOTIMP), client);
            return;
        }
        HostResolvers host = hostResolvers();
        List<Inet4Address> local = q.qclass() == DnsMessage.CLASS_IN
                ? lookup(namesBySource.getOrDefault(client.getAddress(), names), q.name(), host.search()) : List.of();
        if (!local.isEmpty()) {
            // a sandbox's name: A records for A (and ANY); other types exist for no sandbox, so an empty NOERROR
            boolean a = q.type() == DnsMessage.TYPE_A || q.type() == DnsMessage.TYPE_ANY;
            send(DnsMessage.answer(packet, q, a ? local : List.of()), client);
            return;
        }
        InetAddress source = client.getAddress();
        if (forwardsBySource.merge(source, 1, Integer::sum) > MAX_FORWARDS_PER_SOURCE) {
            release(source);
            // an answer as small as the query, at once: the client stops waiting, nothing is amplified
            send(DnsMessage.error(packet, q, DnsMessage.REFUSED), client);
            return;
        }
        if (!forwards.tryAcquire()) {
            release(source);
            return;
        }
        Thread.ofVirtual().start(() -> {
            byte[] answer;
            try {
                answer = forward(packet, q, host.nameservers());
            } finally {
                // before the answer goes out, so a client that asks again at once has its slot back
                forwards.release();
                release(source);
            }
            send(answer, client);
        });
    }

    private void release(InetAddress source) {
        forwardsBySource.computeIfPresent(source, (k, n) -> n == 1 ? null : n - 1);
    }

    /** The name as asked, then without a search domain of the host's (which the sandbox's resolv.conf also has). */
    private static List<Inet4Address> lookup(Map<String, List<Inet4Address>> table, String name, List<String> search) {
        List<Inet4Address> found = table.getOrDefault(name, List.of());
        for (int i = 0; found.isEmpty() && i < search.size(); i++) {
            String suffix = "." + search.get(i);
            if (name.endsWith(suffix) && name.length() > suffix.length()) {
                found = table.getOrDefault(name.substring(0, name.length() - suffix.length()), List.of());
            }
        }
        return found;
    }

    /** The host's resolv.conf as last parsed; parsed again when its mtime or size has changed since. */
    private HostResolvers hostResolvers() {
        long now = System.nanoTime();
        if (hostVersion == null || now - hostCheckedAt >= RESOLV_CONF_CHECK_NANOS) {
            hostCheckedAt = now;
            Object version;
            try {
                BasicFileAttributes a = Files.readAttributes(resolvConf, BasicFileAttributes.class);
                version = List.of(a.lastModifiedTime(), a.size());
            } catch (IOException e) {
                version = "missing";
            }
            if (!version.equals(hostVersion)) {
                host = HostResolvers.read(resolvConf);
                hostVersion = version;
            }
        }
        return host;
    }

    /**
     * The first answer of the host's resolvers to the query, byte for byte but for the id, cut to the size the
     * client accepts; SERVFAIL when none answers in time. The query goes out with a fresh random id, and only a
     * response with that id and the same question is taken: the client's id (chosen by a sandbox) would make a
     * forged answer easier to guess.
     */
    private byte[] forward(byte[] packet, DnsMessage.Query q, List<InetAddress> upstreams) {
        InetAddress self = socket.getLocalAddress();
        int id = RANDOM.nextInt(0x10000);
        byte[] query = packet.clone();
        query[0] = (byte) (id >> 8);
        query[1] = (byte) id;
        long budget = System.nanoTime() + FORWARD_BUDGET.toNanos();
        for (InetAddress upstream : upstreams) {
            if (upstream.equals(self)) {
                continue; // never ask ourselves
            }
            long deadline = Math.min(budget, System.nanoTime() + UPSTREAM_TIMEOUT.toNanos());
            if (deadline - System.nanoTime() < 1_000_000) {
                break; // the budget is spent
            }
            // a fresh socket per query: a random source port, and only the upstream's datagrams get through connect
            try (DatagramSocket s = new DatagramSocket()) {
                s.connect(new InetSocketAddress(upstream, 53));
                s.send(new DatagramPacket(query, query.length));
                byte[] buf = new byte[65535];
                long left;
                while ((left = (deadline - System.nanoTime()) / 1_000_000) > 0) {
                    s.setSoTimeout((int) left); // never past the deadline, however many stray datagrams come
                    DatagramPacket in = new DatagramPacket(buf, buf.length);
                    s.receive(in);
                    if (answers(buf, in.getLength(), id, q)) {
                        return relay(java.util.Arrays.copyOf(buf, in.getLength()), packet, q);
                    }
                }
            } catch (SocketTimeoutException e) {
                // try the next one
            } catch (IOException e) {
                // unreachable (ICMP refused, no route): the next one
            }
        }
        return DnsMessage.error(packet, q, DnsMessage.SERVFAIL);
    }

    /** Whether {@code reply} is a response with {@code id} to the question of {@code q}. */
    private static boolean answers(byte[] reply, int length, int id, DnsMessage.Query q) {
        try {
            DnsMessage.Query r = DnsMessage.question(reply, length);
            return r.id() == id && (r.flags() & 0x8000) != 0 && r.name().equals(q.name()) && r.type() == q.type()
                    && r.qclass() == q.qclass();
        } catch (DnsMessage.Malformed e) {
            return false;
        }
    }

    /**
     * The reply with the client's id again, or only its header and question with TC set when it is larger than the
     * client accepts: never more than the client asked for, so a forged source address gains no amplification.
     */
    private static byte[] relay(byte[] reply, byte[] query, DnsMessage.Query q) {
        if (reply.length > DnsMessage.udpLimit(query, query.length, q)) {
            return DnsMessage.truncated(reply, query, q);
        }
        reply[0] = (byte) (q.id() >> 8);
        reply[1] = (byte) q.id();
        return reply;
    }

    private void send(byte[] answer, InetSocketAddress client) {
        try {
            socket.send(new DatagramPacket(answer, answer.length, client));
        } catch (SocketException e) {
            // closed meanwhile (network removed): nothing to answer to
        } catch (IOException e) {
            LOG.warn("dns: cannot answer " + client + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        socket.close();
        try {
            loop.join(Duration.ofSeconds(2));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** The host's resolv.conf as the forwarder reads it: at most three nameservers (loopback too) and the search list. */
    record HostResolvers(List<InetAddress> nameservers, List<String> search) {

        static HostResolvers read(Path file) {
            List<InetAddress> servers = new ArrayList<>();
            List<String> search = new ArrayList<>();
            String text;
            try {
                text = java.nio.file.Files.size(file) > 65536 ? "" : java.nio.file.Files.readString(file);
            } catch (IOException e) {
                text = ""; // no resolv.conf: nothing to forward to, so SERVFAIL
            }
            for (String line : text.lines().toList()) {
                String[] f = line.strip().split("\\s+");
                if (f.length >= 2 && f[0].equals("nameserver") && servers.size() < 3) {
                    try {
                        servers.add(InetAddress.ofLiteral(f[1].replaceFirst("%.*", "")));
                    } catch (IllegalArgumentException e) {
                        // not an address: resolv(5) ignores it too
                    }
                } else if (f.length >= 2 && (f[0].equals("search") || f[0].equals("domain"))) {
                    search.clear(); // the last of search/domain wins, as in resolv(5)
                    for (int i = 1; i < f.length; i++) {
                        search.add(f[i].toLowerCase(java.util.Locale.ROOT).replaceAll("\\.$", ""));
                    }
                }
            }
            return new HostResolvers(List.copyOf(servers), List.copyOf(search));
        }
    }
}
