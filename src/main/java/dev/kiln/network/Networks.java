package dev.kiln.network;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.network.dns.DnsServer;

import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The bridge networks of a kiln root, by name: {@code kiln} (the default, made on first use) and the ones made with
 * {@code kiln network create} ({@code ROOT/network/<name>.json} + {@code <name>.conflist}, leases in
 * {@code ROOT/network/ipam/<name>}). Nothing exists on the host until a sandbox attaches; from then on a user network
 * has a bridge and a resolver on its gateway address that names the sandboxes on it.
 */
public final class Networks implements AutoCloseable {
    private static final KilnLog LOG = KilnLog.of(Networks.class);

    static final Pattern VALID_NAME = Pattern.compile("[a-zA-Z0-9][a-zA-Z0-9_.-]*");
    /** What {@code --network} already means: these exist (the first four) or are modes, never user networks. */
    private static final List<String> PREDEFINED = List.of("kiln", "bridge", "host", "none", "default", "user", "slirp");
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final SecureRandom RANDOM = new SecureRandom();

    private final Path root;
    private final Path dir;
    private final Map<String, KilnNetwork> known = new ConcurrentHashMap<>();
    private final Map<String, DnsServer> resolvers = new ConcurrentHashMap<>();
    /** Per user network, the running sandboxes on it by id; guarded by itself. Its resolver answers from a copy. */
    private final Map<String, Map<String, Peers.Peer>> peers = new java.util.HashMap<>();

    private final String defaultSubnet;

    public Networks(Path root) {
        this(root, null);
    }

    /** {@code defaultSubnet}: the kiln network's subnet when its conflist is first written (null: one picked). */
    public Networks(Path root, String defaultSubnet) {
        this.root = root;
        this.dir = root.resolve("network");
        this.defaultSubnet = defaultSubnet;
    }

    /** Whether {@code name} is one of the networks every kiln has (and no one can create or remove). */
    public static boolean predefined(String name) {
        return PREDEFINED.subList(0, 4).contains(name);
    }

    /** The network named {@code name}; refused with one line when there is none. */
    public KilnNetwork get(String name) {
        if (name.equals(KilnNetwork.NAME)) {
            return known.computeIfAbsent(name, n -> KilnNetwork.forRoot(root, defaultSubnet));
        }
        KilnNetwork n = known.computeIfAbsent(name, k -> Files.isRegularFile(record(k))
                ? KilnNetwork.load(dir, dir.resolve(k + ".conflist")) : null);
        if (n == null) {
            throw KilnException.notFound("network " + name + " not found (see kiln network ls)");
        }
        return n;
    }

    /** The user network with this name, id or unique id prefix (as Docker finds networks). */
    public Optional<UserNetwork> find(String ref) {
        List<UserNetwork> all = list();
        for (UserNetwork n : all) {
            if (n.name().equals(ref) || n.id().equals(ref)) {
                return Optional.of(n);
            }
        }
        List<UserNetwork> prefixed = all.stream().filter(n -> !ref.isEmpty() && n.id().startsWith(ref)).toList();
        return prefixed.size() == 1 ? Optional.of(prefixed.getFirst()) : Optional.empty();
    }

    /** {@link #find}, refused with one line when there is no such network. */
    public UserNetwork user(String ref) {
        return find(ref).orElseThrow(() -> KilnException.notFound("network " + ref + " not found"));
    }

    /** The user networks, oldest first. */
    public List<UserNetwork> list() {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().endsWith(".json")).map(Networks::read)
                    .sorted(Comparator.comparing(UserNetwork::created)).toList();
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot list " + dir + ": " + e.getMessage(), e);
        }
    }

    /**
     * Makes a user network: checks the name, the subnet (given, or the first free candidate like the default
     * network's) against the host's routes and kiln's other networks, and the gateway; writes its conflist, then its
     * record. Nothing is left behind when it fails.
     */
    public synchronized UserNetwork create(String name, String subnet, String gateway, Map<String, String> labels) {
        return create(name, subnet, gateway, labels, false, null);
    }

    /**
     * {@link #create} with Docker's {@code --internal} (sandboxes reach each other and kilnd's resolver, nothing
     * past the bridge: iptables FORWARD drops, no masquerade) and {@code --ip-range} (a CIDR inside the subnet).
     */
    public synchronized UserNetwork create(String name, String subnet, String gateway, Map<String, String> labels,
                                           boolean internal, String ipRange) {
        if (name == null || name.isEmpty() || !VALID_NAME.matcher(name).matches() || name.length() > 128) {
            throw KilnException.invalid("invalid network name \"" + (name == null ? "" : name)
                    + "\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        }
        if (predefined(name) || find(name).filter(n -> n.name().equals(name)).isPresent()) {
            throw KilnException.conflict("network with name " + name + " already exists");
        }
        if (PREDEFINED.contains(name)) {
            throw KilnException.invalid("network name \"" + name + "\" is reserved: --network " + name
                    + " means something else");
        }
        KilnNetwork standard = get(KilnNetwork.NAME); // its config first, so its subnet is never handed out here
        List<String> taken = new ArrayList<>(list().stream().map(UserNetwork::subnet).toList());
        taken.add(standard.subnet());
        if (subnet == null || subnet.isEmpty()) {
            subnet = Subnets.pick(root.toAbsolutePath().normalize().equals(KilnNetwork.DEFAULT_ROOT),
                    KilnNetwork.hash(root), taken);
        } else {
            checkFree(Subnets.checked(subnet), taken);
        }
        if (gateway == null || gateway.isEmpty()) {
            gateway = Subnets.firstHost(subnet);
        } else if (!gateway.matches("\\d{1,3}(\\.\\d{1,3}){3}") || !Subnets.hostOf(subnet, gateway)) {
            throw KilnException.invalid("invalid gateway " + gateway + ": not a host address of subnet " + subnet);
        }
        String id;
        do {
            byte[] b = new byte[32];
            RANDOM.nextBytes(b);
            id = HexFormat.of().formatHex(b);
        } while (Files.exists(Path.of("/sys/class/net", "kiln-" + id.substring(0, 8))));
        String range = ipRange == null || ipRange.isEmpty() ? null : ipRange;
        UserNetwork n = new UserNetwork(id, name, "kiln-" + id.substring(0, 8), subnet, gateway,
                Instant.now().toString(), labels, internal, range);
        Path conflist = dir.resolve(name + ".conflist");
        ObjectNode config = KilnNetwork.conflist(name, n.bridge(), subnet, gateway, dir.resolve("ipam"), internal,
                range); // an IPRange outside the subnet is refused here, before anything is written
        try {
            Files.createDirectories(dir);
            KilnNetwork.save(conflist, config);
            if (internal) {
                CniChains.isolate(n.bridge());
            }
            Path tmp = dir.resolve("." + name + ".json.tmp");
            JSON.writeValue(tmp.toFile(), n);
            Files.move(tmp, record(name), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException | RuntimeException e) {
            if (internal) {
                CniChains.unisolate(n.bridge());
            }
            deleteQuietly(conflist, dir.resolve("." + name + ".json.tmp"), record(name));
            if (e instanceof RuntimeException r) {
                throw r;
            }
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot create network " + name + ": "
                    + e.getMessage(), e);
        }
        return n;
    }

    private static void checkFree(String subnet, List<String> taken) {
        for (String route : Subnets.hostRoutes()) {
            if (Subnets.overlaps(route, subnet) && !taken.contains(route)) {
                throw KilnException.invalid("subnet " + subnet + " overlaps the host route " + route
                        + " (choose another --subnet)");
            }
        }
        for (String other : taken) {
            if (Subnets.overlaps(other, subnet)) {
                throw KilnException.invalid("subnet " + subnet + " overlaps " + other
                        + ", the subnet of another kiln network (choose another --subnet)");
            }
        }
    }

    /**
     * Removes a user network no sandbox uses (the engine checks that): its resolver, its bridge, the iptables rules
     * the plugins left for it, its leases, its conflist, and last its record, so an interrupted removal can be
     * repeated.
     */
    public synchronized UserNetwork remove(String ref) {
        if (predefined(ref)) {
            throw KilnException.invalid(ref + " is a pre-defined network and cannot be removed");
        }
        UserNetwork n = user(ref);
        DnsServer resolver = resolvers.remove(n.name());
        if (resolver != null) {
            resolver.close();
        }
        synchronized (peers) {
            peers.remove(n.name());
        }
        known.remove(n.name());
        if (Files.exists(Path.of("/sys/class/net", n.bridge()))) {
            Exec.run(List.of("ip", "link", "delete", n.bridge()), null).orFail("cannot delete bridge " + n.bridge());
        }
        CniChains.remove(n.name(), n.bridge());
        if (n.internal()) {
            CniChains.unisolate(n.bridge());
        }
        deleteTree(dir.resolve("ipam").resolve(n.name()));
        deleteQuietly(dir.resolve(n.name() + ".conflist"));
        try {
            Files.deleteIfExists(record(n.name()));
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot remove " + record(n.name()) + ": "
                    + e.getMessage(), e);
        }
        return n;
    }

    /**
     * Puts a sandbox on the network {@code name} (see {@link KilnNetwork#attach}); on a user network its resolver
     * then listens, since the first ADD is what makes the bridge and its gateway address.
     */
    public Attachment attach(String name, String sandboxId, List<PortMapping> ports, Path stateFile) {
        return attach(name, sandboxId, ports, stateFile, null);
    }

    /** {@link #attach} at address {@code ip} ({@code --ip}; null for the next free one). */
    public Attachment attach(String name, String sandboxId, List<PortMapping> ports, Path stateFile, String ip) {
        Attachment a = get(name).attach(sandboxId, ports, stateFile, ip);
        if (!name.equals(KilnNetwork.NAME)) {
            find(name).ifPresent(this::serve);
        }
        return a;
    }

    /**
     * Joins a sandbox already on its first network to user network {@code name} as well ({@code network connect}),
     * on interface {@code ifname}; the network's resolver then listens, as for {@link #attach}.
     */
    public Attachment join(String name, String sandboxId, String ifname, Path stateFile, String ip) {
        Attachment a = get(name).join(sandboxId, ifname, stateFile, ip);
        find(name).ifPresent(this::serve);
        return a;
    }

    /** Undoes a sandbox's attachment recorded in {@code stateFile}, on whichever network it names. */
    public void detach(Path stateFile) {
        KilnNetwork.read(stateFile).ifPresent(a -> get(a.network()).detach(stateFile));
    }

    /**
     * Fills the resolvers' tables from {@code directory} (asked once per network, at kilnd start; from then on
     * {@link #peer} keeps them current), and starts the resolvers of the user networks whose bridge exists already
     * (kilnd restarted while sandboxes ran on them).
     */
    public void serveNames(Peers directory) {
        try {
            for (UserNetwork n : list()) {
                for (Peers.Peer p : directory.on(n.name())) {
                    peer(p.id(), n.name(), p);
                }
                if (Files.exists(Path.of("/sys/class/net", n.bridge()))) {
                    serve(n);
                }
            }
        } catch (KilnException e) {
            // a damaged record must not keep kilnd from starting; its network's commands report it
            LOG.error("cannot start the resolvers of user networks: " + e.getMessage(), e);
        }
    }

    /**
     * Sandbox {@code id} is {@code peer} on user network {@code network} from now on, and on no other; with a null
     * {@code network} it is on none (stopped, removed). The engine calls this on every start, exit, rename and removal,
     * so the resolvers never ask the engine per query.
     */
    public void peer(String id, String network, Peers.Peer peer) {
        peer(id, network == null ? Map.of() : Map.of(network, peer));
    }

    /**
     * Sandbox {@code id} is on exactly the user networks of {@code byNetwork} from now on (its first one and those
     * it joined with {@code network connect}), as the peer given for each. Every resolver's table is made again: a
     * sandbox on two networks resolves the names of both.
     */
    public void peer(String id, Map<String, Peers.Peer> byNetwork) {
        synchronized (peers) {
            for (Map.Entry<String, Map<String, Peers.Peer>> e : peers.entrySet()) {
                if (!byNetwork.containsKey(e.getKey())) {
                    e.getValue().remove(id);
                }
            }
            byNetwork.forEach((network, p) -> peers.computeIfAbsent(network, k -> new java.util.LinkedHashMap<>())
                    .put(id, p));
            peers.keySet().forEach(this::publish);
        }
    }

    /** Hands the network's resolver (if it listens) a fresh table of names; under the lock of {@link #peers}. */
    private void publish(String network) {
        DnsServer resolver = resolvers.get(network);
        if (resolver == null) {
            return;
        }
        Map<String, List<Inet4Address>> table = table(network);
        // a sandbox also on other networks: from its address here, their names too (this network's first)
        Map<InetAddress, Map<String, List<Inet4Address>>> bySource = new java.util.HashMap<>();
        for (Peers.Peer p : peers.getOrDefault(network, Map.of()).values()) {
            List<String> others = peers.entrySet().stream().filter(e -> !e.getKey().equals(network)
                    && e.getValue().containsKey(p.id())).map(Map.Entry::getKey).sorted().toList();
            if (others.isEmpty()) {
                continue;
            }
            Map<String, List<Inet4Address>> reach = new java.util.HashMap<>(table);
            for (String other : others) {
                table(other).forEach(reach::putIfAbsent);
            }
            bySource.put(InetAddress.ofLiteral(p.address()), reach);
        }
        resolver.names(table, bySource);
    }

    /** The names of the sandboxes on {@code network} with their addresses there; under the lock of {@link #peers}. */
    private Map<String, List<Inet4Address>> table(String network) {
        Map<String, List<Inet4Address>> table = new java.util.HashMap<>();
        for (Peers.Peer p : peers.getOrDefault(network, Map.of()).values()) {
            Inet4Address address = (Inet4Address) InetAddress.ofLiteral(p.address());
            for (String name : p.names().stream().map(n -> n.toLowerCase(Locale.ROOT)).distinct().toList()) {
                table.computeIfAbsent(name, k -> new ArrayList<>()).add(address);
            }
        }
        return table;
    }

    /** The resolver of {@code n}, started if it is not listening yet; a failure is reported, not thrown. */
    private void serve(UserNetwork n) {
        DnsServer started = resolvers.computeIfAbsent(n.name(), name -> {
            try {
                return DnsServer.start((Inet4Address) InetAddress.ofLiteral(n.gateway()), 53,
                        source -> source instanceof Inet4Address
                                && Subnets.overlaps(n.subnet(), source.getHostAddress() + "/32"));
            } catch (IOException | RuntimeException e) {
                LOG.warn("no name resolution on network " + name + ": cannot listen on "
                        + n.gateway() + ":53/udp: " + e.getMessage());
                return null;
            }
        });
        if (started != null) {
            synchronized (peers) {
                publish(n.name()); // a peer() that ran before the resolver was in the map left it out
            }
        }
    }

    @Override
    public void close() {
        resolvers.values().forEach(DnsServer::close);
        resolvers.clear();
    }

    private Path record(String name) {
        return dir.resolve(name + ".json");
    }

    private static UserNetwork read(Path file) {
        try {
            return JSON.readValue(file.toFile(), UserNetwork.class);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.CORRUPT, "cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static void deleteTree(Path tree) {
        if (!Files.exists(tree)) {
            return;
        }
        try (Stream<Path> s = Files.walk(tree)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot remove " + tree + ": " + e.getMessage(), e);
        }
    }

    private static void deleteQuietly(Path... files) {
        for (Path f : files) {
            try {
                Files.deleteIfExists(f);
            } catch (IOException ignored) {
                // best effort while undoing a failed create; the error that caused it is what gets reported
            }
        }
    }
}
