package dev.kiln.network;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.KilnLog;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * The {@code kiln} network: a Linux bridge with the host as gateway and masquerade (CNI {@code bridge} +
 * {@code host-local}), published ports ({@code portmap}), and a network namespace per sandbox. Its conflist is written
 * once per kiln root to {@code ROOT/network/kiln.conflist} and reused, so the subnet stays put across restarts; the
 * IPAM leases live in {@code ROOT/network/ipam}, never in /var/lib/cni. The default root gets the bridge {@code kiln0}
 * on 10.88.0.0/16; any other root (tests, a second kiln) its own bridge and /24 named after the root, so they never
 * share addresses.
 */
public final class KilnNetwork {
    private static final KilnLog LOG = KilnLog.of(KilnNetwork.class);

    public static final Path DEFAULT_ROOT = Path.of("/var/lib/kiln");
    public static final String NAME = "kiln";
    static final String IFNAME = "eth0";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final Path dir;
    private final ObjectNode conflist;

    KilnNetwork(Path dir, ObjectNode conflist) {
        this.dir = dir;
        this.conflist = conflist;
    }

    /** The network of the kiln root {@code root}; nothing is created on the host until a sandbox attaches. */
    public static KilnNetwork forRoot(Path root) {
        return forRoot(root, null);
    }

    /**
     * The same, with {@code subnet} ({@code default-subnet} in config.yaml; null: picked clear of the host's routes)
     * used when the conflist is first written. An existing conflist keeps its subnet, so addresses and leases stay
     * valid; kilnd says so when the configuration asks for another.
     */
    public static KilnNetwork forRoot(Path root, String subnet) {
        Path dir = root.resolve("network");
        Path file = dir.resolve("kiln.conflist");
        try {
            if (Files.isRegularFile(file)) {
                KilnNetwork existing = new KilnNetwork(dir, (ObjectNode) JSON.readTree(file.toFile()));
                if (subnet != null && !subnet.equals(existing.subnet())) {
                    LOG.warn("the kiln network keeps its subnet " + existing.subnet() + " (config "
                            + "asks for " + subnet + "): remove " + file + " while no sandbox runs to change it");
                }
                return existing;
            }
            Files.createDirectories(dir);
            boolean standard = root.toAbsolutePath().normalize().equals(DEFAULT_ROOT);
            String bridge = standard ? "kiln0" : "kiln" + hash(root).substring(0, 8);
            ObjectNode conflist = conflist(bridge, subnet != null ? configured(subnet) : Subnets.pick(standard,
                    hash(root)), dir.resolve("ipam"));
            write(file, JSON.writeValueAsString(conflist));
            return new KilnNetwork(dir, conflist);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot set up the kiln network config in " + dir
                    + ": " + e.getMessage(), e);
        }
    }

    /** A network made with {@code kiln network create}, from the conflist it was given. */
    static KilnNetwork load(Path dir, Path conflistFile) {
        try {
            return new KilnNetwork(dir, (ObjectNode) JSON.readTree(conflistFile.toFile()));
        } catch (IOException | ClassCastException e) {
            throw new KilnException(KilnException.Kind.CORRUPT, "cannot read " + conflistFile + ": " + e.getMessage(), e);
        }
    }

    /** Writes {@code conflist} to {@code file} atomically. */
    static void save(Path file, ObjectNode conflist) throws IOException {
        write(file, JSON.writeValueAsString(conflist));
    }

    /** A configured subnet: well-formed and clear of the host's own routes. */
    private static String configured(String subnet) {
        Subnets.checked(subnet);
        for (String route : Subnets.hostRoutes()) {
            if (Subnets.overlaps(route, subnet)) {
                throw KilnException.invalid("default-subnet " + subnet + " overlaps the host's route " + route);
            }
        }
        return subnet;
    }

    static ObjectNode conflist(String bridge, String subnet, Path ipamDir) {
        return conflist(NAME, bridge, subnet, ipamDir);
    }

    static ObjectNode conflist(String name, String bridge, String subnet, Path ipamDir) {
        return conflist(name, bridge, subnet, null, ipamDir);
    }

    /** The conflist of a bridge network; {@code gateway} null: the subnet's first address (the plugin's default). */
    static ObjectNode conflist(String name, String bridge, String subnet, String gateway, Path ipamDir) {
        return conflist(name, bridge, subnet, gateway, ipamDir, false, null);
    }

    /**
     * {@code internal}: no masquerade (and {@link CniChains#isolate} drops forwarding past the bridge);
     * {@code ipRange}: host-local's rangeStart/rangeEnd.
     */
    static ObjectNode conflist(String name, String bridge, String subnet, String gateway, Path ipamDir,
                               boolean internal, String ipRange) {
        ObjectNode c = JSON.createObjectNode();
        c.put("cniVersion", "1.0.0");
        c.put("name", name);
        var plugins = c.putArray("plugins");
        ObjectNode br = plugins.addObject();
        br.put("type", "bridge");
        br.put("bridge", bridge);
        br.put("isGateway", true);
        br.put("ipMasq", !internal);
        br.put("hairpinMode", true);
        ObjectNode ipam = br.putObject("ipam");
        ipam.put("type", "host-local");
        ObjectNode range = ipam.putArray("ranges").addArray().addObject().put("subnet", subnet);
        if (gateway != null) {
            range.put("gateway", gateway);
        }
        if (ipRange != null) {
            String[] bounds = Subnets.range(subnet, ipRange);
            range.put("rangeStart", bounds[0]);
            range.put("rangeEnd", bounds[1]);
        }
        ipam.putArray("routes").addObject().put("dst", "0.0.0.0/0");
        ipam.put("dataDir", ipamDir.toString());
        ObjectNode portmap = plugins.addObject();
        portmap.put("type", "portmap");
        portmap.putObject("capabilities").put("portMappings", true);
        portmap.put("snat", true);
        return c;
    }

    /** The network's name ({@code kiln} for the default one). */
    public String name() {
        return conflist.path("name").asText();
    }

    public String bridge() {
        return conflist.path("plugins").path(0).path("bridge").asText();
    }

    public String subnet() {
        return conflist.path("plugins").path(0).path("ipam").path("ranges").path(0).path(0).path("subnet").asText();
    }

    /** The bridge's address on the network: the range's gateway, else the subnet's first address. */
    public String gateway() {
        String g = conflist.path("plugins").path(0).path("ipam").path("ranges").path(0).path(0).path("gateway")
                .asText("");
        return g.isEmpty() ? Subnets.firstHost(subnet()) : g;
    }

    /** Whether {@code address} is a host address of this network's subnet (for {@code --ip}). */
    public boolean hostAddress(String address) {
        return address.matches("\\d{1,3}(\\.\\d{1,3}){3}") && Subnets.hostOf(subnet(), address);
    }

    /** Where host-local keeps this network's leases (one file per leased address). */
    public Path leaseDir() {
        return dir.resolve("ipam").resolve(name());
    }

    /** The namespace a sandbox joins (whether it exists yet or not); the OCI config names it. */
    public static Path netnsPath(String sandboxId) {
        return NetNamespace.of(sandboxId).path();
    }

    /**
     * Host ports for {@code wanted}: a fixed one must be free (not published by another sandbox in {@code taken},
     * nothing listening on it); a 0 becomes a free port. Refused with one line otherwise.
     */
    public static List<PortMapping> allocate(List<PortMapping> wanted, List<PortMapping> taken) {
        List<PortMapping> out = new ArrayList<>();
        List<PortMapping> busy = new ArrayList<>(taken);
        for (PortMapping p : wanted) {
            PortMapping resolved = p.hostPort() == 0 ? p.withHostPort(freePort(p, busy)) : p;
            if (busy.stream().anyMatch(resolved::clashesWith) || !bindable(resolved)) {
                throw KilnException.conflict("cannot publish " + resolved.hostAddress() + ":" + resolved.hostPort()
                        + "/" + resolved.protocol() + ": port is already allocated (choose another host port)");
            }
            busy.add(resolved);
            out.add(resolved);
        }
        return out;
    }

    private static int freePort(PortMapping p, List<PortMapping> busy) {
        for (int attempt = 0; attempt < 50; attempt++) {
            int port;
            try (ServerSocket s = new ServerSocket()) {
                s.bind(new InetSocketAddress(InetAddress.getByName(p.hostAddress()), 0));
                port = s.getLocalPort();
            } catch (IOException e) {
                throw KilnException.invalid("cannot publish on " + p.hostAddress() + ": " + e.getMessage());
            }
            PortMapping candidate = p.withHostPort(port);
            if (busy.stream().noneMatch(candidate::clashesWith) && bindable(candidate)) {
                return port;
            }
        }
        throw KilnException.conflict("no free host port found for " + p.key());
    }

    private static boolean bindable(PortMapping p) {
        try {
            InetSocketAddress a = new InetSocketAddress(InetAddress.getByName(p.hostAddress()), p.hostPort());
            if (p.protocol().equals("udp")) {
                try (DatagramSocket s = new DatagramSocket(a)) {
                    return s.isBound();
                }
            }
            try (ServerSocket s = new ServerSocket()) {
                s.bind(a);
                return true;
            }
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Creates the sandbox's namespace and puts it on the network: loopback up, a veth to the bridge with an address,
     * the published ports. The record is written to {@code stateFile} before ADD, so a crash half-way is undone by
     * {@link #detach}; a failure undoes itself and leaves nothing behind.
     */
    public Attachment attach(String sandboxId, List<PortMapping> ports, Path stateFile) {
        return attach(sandboxId, ports, stateFile, null);
    }

    /** {@link #attach} with the address {@code ip} ({@code --ip}; null for the next free one). */
    public Attachment attach(String sandboxId, List<PortMapping> ports, Path stateFile, String ip) {
        NetNamespace ns = NetNamespace.of(sandboxId);
        save(stateFile, Attachment.pending(name(), sandboxId, ns.path().toString(), ports, IFNAME));
        try {
            ns.add();
            ObjectNode lo = JSON.createObjectNode();
            lo.put("cniVersion", "1.0.0");
            lo.put("name", "lo");
            lo.put("type", "loopback");
            CniPlugins.addOne(lo, sandboxId, ns.path(), "lo");
            JsonNode result = CniPlugins.add(conflist, sandboxId, ns.path(), IFNAME, ports, ip);
            Attachment a = fromResult(name(), sandboxId, ns, ports, result, IFNAME);
            save(stateFile, a);
            enableLocalnetRouting();
            return a;
        } catch (RuntimeException e) {
            try {
                detach(stateFile);
            } catch (RuntimeException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
    }

    /**
     * Joins a sandbox whose namespace exists (made by its first network's {@link #attach}) to this network too, on
     * interface {@code ifname} ({@code network connect}): a second veth to this network's bridge. Recorded in
     * {@code stateFile} before ADD, undone by {@link #detach}, which leaves the namespace to its first network.
     */
    public Attachment join(String sandboxId, String ifname, Path stateFile, String ip) {
        NetNamespace ns = NetNamespace.of(sandboxId);
        if (!Files.exists(ns.path())) {
            throw KilnException.conflict("the sandbox has no network namespace to join " + name() + " from");
        }
        save(stateFile, Attachment.pending(name(), sandboxId, ns.path().toString(), List.of(), ifname));
        try {
            JsonNode result = CniPlugins.add(conflist, sandboxId, ns.path(), ifname, List.of(), ip);
            Attachment a = fromResult(name(), sandboxId, ns, List.of(), result, ifname);
            save(stateFile, a);
            return a;
        } catch (RuntimeException e) {
            try {
                detach(stateFile);
            } catch (RuntimeException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
    }

    /** CNI CHECK of a recorded attachment; throws when the plugins find it broken. */
    public void check(Path stateFile) {
        Attachment a = read(stateFile).orElseThrow(() -> KilnException.notFound("no network attachment"));
        CniPlugins.check(conflist, a.sandboxId(), Path.of(a.netns()), a.ifname(), a.ports(), a.result());
    }

    /** Undoes {@link #attach} from its record: CNI DEL, namespace deleted, record removed. Idempotent. */
    public void detach(Path stateFile) {
        Optional<Attachment> found = read(stateFile);
        if (found.isEmpty()) {
            return;
        }
        Attachment a = found.get();
        NetNamespace ns = new NetNamespace(Path.of(a.netns()).getFileName().toString());
        KilnException failed = null;
        try {
            CniPlugins.del(conflist, a.sandboxId(), ns.path(), a.ifname(), a.ports(), a.result());
        } catch (KilnException e) {
            failed = e;
        }
        if (a.first()) {
            ns.delete(); // a joined network's interface goes with the DEL; the namespace is its first network's
        }
        if (failed != null) {
            throw failed;
        }
        try {
            Files.deleteIfExists(stateFile);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The attachment recorded in {@code stateFile}; empty when there is none (also when it goes while read). */
    public static Optional<Attachment> read(Path stateFile) {
        try {
            // read at once, not checked first: another sandbox's removal (--rm) may delete the file in between
            return Optional.of(JSON.readValue(Files.readAllBytes(stateFile), Attachment.class));
        } catch (java.nio.file.NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.CORRUPT, "cannot read " + stateFile + ": " + e.getMessage(), e);
        }
    }

    private static Attachment fromResult(String network, String id, NetNamespace ns, List<PortMapping> ports,
                                         JsonNode result, String ifname) {
        JsonNode ip = result == null ? null : result.path("ips").path(0);
        if (ip == null || !ip.has("address")) {
            throw new KilnException(KilnException.Kind.INTERNAL, "the CNI bridge plugin gave no address: " + result);
        }
        String[] cidr = ip.path("address").asText().split("/");
        String mac = ip.has("interface") ? result.path("interfaces").path(ip.path("interface").asInt())
                .path("mac").asText(null) : null;
        return new Attachment(network, id, ns.path().toString(), cidr[0], Integer.parseInt(cidr[1]),
                ip.path("gateway").asText(null), mac, ports, result, ifname);
    }

    /**
     * Lets DNAT'ed packets from 127.0.0.1 cross to the bridge (portmap's snat sets it too; set here so a published
     * port answers on loopback whatever the plugin version does).
     */
    private void enableLocalnetRouting() {
        Path knob = Path.of("/proc/sys/net/ipv4/conf", bridge(), "route_localnet");
        try {
            if (Files.exists(knob) && !Files.readString(knob).strip().equals("1")) {
                Files.writeString(knob, "1");
            }
        } catch (IOException e) {
            LOG.warn("cannot set " + knob + ": " + e.getMessage()
                    + " (ports published on 127.0.0.1 may not answer)");
        }
    }

    static void save(Path file, Attachment a) {
        try {
            Files.createDirectories(file.getParent());
            write(file, JSON.writeValueAsString(a));
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    private static void write(Path file, String content) throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        Files.writeString(tmp, content + "\n", StandardCharsets.UTF_8);
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    static String hash(Path root) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(root.toAbsolutePath().normalize().toString()
                    .getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
