package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.image.Digest;
import dev.kiln.isolation.Isolators;
import dev.kiln.isolation.SandboxNetwork;
import dev.kiln.network.Attachment;
import dev.kiln.network.KilnNetwork;
import dev.kiln.network.NetworkMode;
import dev.kiln.network.Networks;
import dev.kiln.network.PortMapping;
import dev.kiln.network.SlirpNetwork;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;

/**
 * The sandboxes' side of networking: which network a request gets (the kiln bridge by default), what is refused,
 * host ports, and putting a sandbox on its network at start and taking it off at exit or removal, from the record
 * in its directory ({@link Attachment#FILE}). {@link Sandboxes} calls it under the sandbox's lock.
 */
final class SandboxNetworking {

    private final Networks networks;
    private final Images images;
    private final SandboxStore store;
    private final Function<Sandbox, Path> dir;
    private final Isolators isolators;
    /** Serialises host-port allocation between creates and starts. */
    private final Object ports = new Object();
    private final SandboxConnections connections;

    SandboxNetworking(Networks networks, Images images, SandboxStore store, Function<Sandbox, Path> dir,
                      Isolators isolators) {
        this.networks = networks;
        this.connections = new SandboxConnections(networks);
        this.isolators = isolators;
        this.images = images;
        this.store = store;
        this.dir = dir;
    }

    /** Whether {@code isolation} can have network {@code mode} (its descriptor says). */
    private boolean supports(String isolation, SandboxNetwork.Mode mode) {
        return isolators.named(isolation).isolation().networks().contains(mode);
    }

    /**
     * The sandbox's {@code --network}, or its isolation's default: the kiln bridge where the isolation can join one
     * (as Docker's default bridge), else loopback only.
     */
    NetworkMode mode(SandboxConfig r, String isolation) {
        boolean publishes = !published(r).isEmpty() || r.publishAll();
        return NetworkMode.parse(r.network(),
                supports(isolation, SandboxNetwork.Mode.BRIDGE) || publishes ? NetworkMode.KILN : NetworkMode.NONE);
    }

    private static List<PortMapping> published(SandboxConfig r) {
        return r.publish() == null ? List.of() : r.publish().stream().map(PortMapping::parse).toList();
    }

    /**
     * The request's network, refused with one line where kiln cannot give it; fixed host ports must be free now
     * (they are checked again at start).
     */
    void check(SandboxConfig r, String isolation) {
        List<PortMapping> published = published(r);
        NetworkMode mode = mode(r, isolation);
        if ((!published.isEmpty() || r.publishAll()) && !publishes(mode)) {
            throw KilnException.invalid("-p needs a network: --network " + mode.display() + " publishes no ports "
                    + "(use --network kiln or a network made with kiln network create)");
        }
        switch (mode.kind()) {
            case HOST -> {
                if (!supports(isolation, SandboxNetwork.Mode.HOST)) {
                    throw KilnException.invalid("--network host is only for the " + supporting(SandboxNetwork.Mode.HOST)
                            + " isolation: a " + isolation + " sandbox has a network stack of its own");
                }
            }
            case USER -> {
                if (!supports(isolation, SandboxNetwork.Mode.USER)) {
                    throw KilnException.invalid("--network user is not supported for the " + isolation
                            + " isolation (it is QEMU's user-mode network, for --isolation "
                            + supporting(SandboxNetwork.Mode.USER) + ")");
                }
            }
            case BRIDGE -> {
                if (!supports(isolation, SandboxNetwork.Mode.BRIDGE)) {
                    throw KilnException.invalid("--network " + mode.display() + " is not supported for the "
                            + isolation + " isolation yet (use --network none)");
                }
                KilnNetwork network = networks.get(mode.network()); // refused when there is no such network
                var settings = r.settings();
                if (mode.network().equals(KilnNetwork.NAME)
                        && (!settings.aliases().isEmpty() || settings.ipAddress() != null)) {
                    throw KilnException.invalid("--network-alias and --ip are for user networks (the default network "
                            + "has no resolver and no fixed addresses, as Docker's default bridge)");
                }
                if (settings.ipAddress() != null && !network.hostAddress(settings.ipAddress())) {
                    throw KilnException.invalid("--ip " + settings.ipAddress() + " is not a host address of network "
                            + mode.network() + " (" + network.subnet() + ")");
                }
            }
            case NONE -> { }
        }
        if (!mode.bridged() && (!r.settings().aliases().isEmpty() || r.settings().ipAddress() != null)) {
            throw KilnException.invalid("--network-alias and --ip need a user network (not --network "
                    + mode.display() + ")");
        }
        // --dns and --add-host values: RequestCheck (with every other value written into the sandbox's files)
        if (!published.isEmpty()) {
            synchronized (ports) {
                KilnNetwork.allocate(published.stream().filter(p -> p.hostPort() != 0).toList(), publishedPorts(null));
            }
        }
    }

    private String supporting(SandboxNetwork.Mode mode) {
        return isolators.names(i -> i.isolation().networks().contains(mode));
    }

    /** Networks that publish ports: bridges (portmap) and a VM's user network (QEMU's hostfwd). */
    private static boolean publishes(NetworkMode mode) {
        return mode.bridged() || mode.kind() == NetworkMode.Kind.USER;
    }

    /** Whether the sandbox has a network record while it runs (its address and published ports). */
    boolean recorded(Sandbox s) {
        return publishes(mode(s.config(), s.isolation()));
    }

    /** {@code -p} mappings, then with {@code -P} each port the image EXPOSEs that -p did not publish. */
    private List<PortMapping> wantedPorts(Sandbox s) {
        List<PortMapping> wanted = new ArrayList<>(published(s.config()));
        if (s.config().publishAll()) {
            var exposed = images.configOf(Digest.parse(s.imageId())).config();
            if (exposed != null && exposed.exposedPorts() != null) {
                for (String port : exposed.exposedPorts().keySet()) {
                    PortMapping p = PortMapping.parse(port);
                    if (wanted.stream().noneMatch(w -> w.containerPort() == p.containerPort()
                            && w.protocol().equals(p.protocol()))) {
                        wanted.add(p);
                    }
                }
            }
        }
        return wanted;
    }

    /** Host ports published by running sandboxes other than {@code except}. */
    private List<PortMapping> publishedPorts(String except) {
        List<PortMapping> out = new ArrayList<>();
        for (Sandbox other : store.all()) {
            if (!other.id().equals(except) && recorded(other)) {
                KilnNetwork.read(networkFile(other)).ifPresent(a -> out.addAll(a.ports()));
            }
        }
        return out;
    }

    /** The sandbox's place on its network (bridge or user) while it runs. */
    Optional<Attachment> attachment(Sandbox s) {
        return recorded(s) ? KilnNetwork.read(networkFile(s)) : Optional.empty();
    }

    /**
     * Puts a starting sandbox on its network: ports allocated, then for a bridge the namespace made and CNI ADD, for
     * the user network only the record (QEMU forwards the ports).
     */
    void attach(Sandbox s) {
        NetworkMode mode = mode(s.config(), s.isolation());
        synchronized (ports) {
            detach(s); // a record left by a crash
            List<PortMapping> allocated = KilnNetwork.allocate(wantedPorts(s), publishedPorts(s.id()));
            if (mode.kind() == NetworkMode.Kind.USER) {
                SlirpNetwork.attach(s.id(), allocated, networkFile(s));
            } else {
                networks.attach(mode.network(), s.id(), allocated, networkFile(s), s.config().settings().ipAddress());
                connections.joinAll(s.id(), dir.apply(s)); // the networks joined with network connect
            }
        }
    }

    /** Takes a sandbox off its network (CNI DEL, namespace deleted); nothing to do when it is not on one. */
    void detach(Sandbox s) {
        connections.leaveAll(dir.apply(s)); // before the first network's detach deletes the namespace
        Optional<Attachment> a = KilnNetwork.read(networkFile(s));
        if (a.isPresent() && SlirpNetwork.recorded(a.get())) {
            SlirpNetwork.detach(networkFile(s));
        } else if (a.isPresent()) {
            networks.detach(networkFile(s));
        }
    }

    // ---- network connect / disconnect ----

    /** The networks the sandbox joined after its first, in the order joined. */
    List<SandboxConnections.Connection> connections(Sandbox s) {
        return connections.of(dir.apply(s));
    }

    /** The sandbox's place on a joined network while it runs. */
    Optional<Attachment> attachment(Sandbox s, SandboxConnections.Connection c) {
        return connections.attachment(dir.apply(s), c);
    }

    /** A network reference as {@code network connect} takes it: kiln's default ({@code bridge}) or a user network. */
    String networkName(String ref) {
        return ref.equals("bridge") || ref.equals(KilnNetwork.NAME) ? KilnNetwork.NAME : networks.user(ref).name();
    }

    /**
     * Joins the sandbox to network {@code name} too: recorded, and when it runs joined at once (a second interface
     * in its namespace). A sandbox on no bridge (none, host, a VM's user network) has nothing to join from; an
     * isolation that boots a kernel takes its NICs at boot.
     */
    void connect(Sandbox s, String name, List<String> aliases, String ip) {
        NetworkMode mode = mode(s.config(), s.isolation());
        if (isolators.named(s.isolation()).guestKernels().isPresent()) {
            throw KilnException.invalid("a " + s.isolation() + " sandbox's network interfaces are made when it boots: "
                    + "network connect is not supported for it (create it with --network " + name + ")");
        }
        if (!mode.bridged()) {
            throw KilnException.invalid("sandbox " + s.name() + " is on network " + mode.display() + ": only a "
                    + "sandbox on a bridge network (kiln or one made with network create) can join another");
        }
        List<SandboxConnections.Connection> joined = connections(s);
        if (mode.network().equals(name) || joined.stream().anyMatch(c -> c.network().equals(name))) {
            throw KilnException.conflict("sandbox " + s.name() + " is already on network " + name);
        }
        if (name.equals(KilnNetwork.NAME) && ((aliases != null && !aliases.isEmpty()) || ip != null)) {
            throw KilnException.invalid("aliases and --ip are for user networks (the default network has no "
                    + "resolver and no fixed addresses, as Docker's default bridge)");
        }
        if (ip != null && !networks.get(name).hostAddress(ip)) {
            throw KilnException.invalid("--ip " + ip + " is not a host address of network " + name + " ("
                    + networks.get(name).subnet() + ")");
        }
        SandboxConnections.Connection c = new SandboxConnections.Connection(name, aliases, ip,
                SandboxConnections.nextIfname(joined));
        if (s.running()) {
            connections.join(s.id(), dir.apply(s), c);
        }
        List<SandboxConnections.Connection> all = new ArrayList<>(joined);
        all.add(c);
        connections.save(dir.apply(s), all);
    }

    /** Takes the sandbox off a network it joined with connect (its interface deleted if it runs). */
    void disconnect(Sandbox s, String name) {
        NetworkMode mode = mode(s.config(), s.isolation());
        List<SandboxConnections.Connection> joined = connections(s);
        if (joined.stream().noneMatch(c -> c.network().equals(name))) {
            if (mode.bridged() && mode.network().equals(name)) {
                throw KilnException.invalid("sandbox " + s.name() + " was created on network " + name + ": kiln "
                        + "can disconnect only networks joined with network connect");
            }
            throw KilnException.notFound("sandbox " + s.name() + " is not connected to network " + name);
        }
        connections.leave(dir.apply(s), name);
        connections.save(dir.apply(s), SandboxConnections.without(joined, name));
    }

    private Path networkFile(Sandbox s) {
        return dir.apply(s).resolve(Attachment.FILE);
    }

    /** What the isolator needs of the sandbox's network: its mode, namespace, address once attached, DNS, hosts. */
    SandboxNetwork of(Sandbox s) {
        SandboxConfig r = s.config();
        NetworkMode mode = mode(r, s.isolation());
        SandboxNetwork n = new SandboxNetwork(SandboxNetwork.Mode.valueOf(mode.kind().name()),
                mode.bridged() ? KilnNetwork.netnsPath(s.id()) : null, null, 0, null, null, SandboxNetwork.DEFAULT_MTU,
                nameservers(r, mode), r.dnsSearch(), r.dnsOptions(), r.extraHosts());
        if (!publishes(mode)) {
            return n;
        }
        return KilnNetwork.read(networkFile(s)).filter(a -> a.ipAddress() != null)
                .map(a -> n.attached(a.ipAddress(), a.prefixLength(), a.gateway(), a.macAddress(), a.ports()))
                .orElse(n);
    }

    /**
     * {@code --dns} where given; else on a user network its resolver (kilnd, on the gateway), which names the other
     * sandboxes there and forwards the rest to the host's resolvers, as Docker's embedded DNS; else the host's.
     */
    private List<String> nameservers(SandboxConfig r, NetworkMode mode) {
        if ((r.dns() != null && !r.dns().isEmpty()) || !mode.bridged() || mode.network().equals(KilnNetwork.NAME)) {
            return r.dns();
        }
        return networks.find(mode.network()).map(n -> List.of(n.gateway())).orElse(r.dns());
    }
}
