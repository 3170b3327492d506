package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.image.Image;
import dev.kiln.isolation.GuestKernels;
import dev.kiln.isolation.Isolators;
import dev.kiln.network.KilnNetwork;
import dev.kiln.network.NetworkMode;
import dev.kiln.network.Networks;
import dev.kiln.network.Peers;
import dev.kiln.network.UserNetwork;
import dev.kiln.state.Database;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/** The engine as the daemon sees it: images and sandboxes over one database, and the rules that span both. */
public final class Engine implements AutoCloseable {
    private static final KilnLog LOG = KilnLog.of(Engine.class);

    private final Images images;
    private final Sandboxes sandboxes;
    private final Events events = new Events();
    private final Isolators isolators;
    private final Networks networks;
    private final SandboxFiles files;
    private final Execs execs;
    private final SandboxVolumes volumes;
    private final Path root;
    /** What can change whether and how a sandbox is named by its network's resolver. */
    private static final Set<String> NAME_EVENTS = Set.of("start", "die", "stop", "rename", "destroy", "connect",
            "disconnect");
    /** Serialises {@link #refreshPeer}: each reads the sandbox's state and writes the table in one step. */
    private final Object peerLock = new Object();

    public Engine(Path root, Path runRoot, Set<String> insecureRegistries, Isolators isolators,
                  String defaultIsolation, String defaultSubnet) {
        this.isolators = isolators;
        this.root = root;
        this.images = new Images(root, runRoot, insecureRegistries);
        clearBuilds(buildRoot());
        Database db = images.database();
        this.networks = new Networks(root, defaultSubnet);
        dev.kiln.engine.volume.Volumes store = new dev.kiln.engine.volume.Volumes(root.resolve("volumes"));
        this.sandboxes = new Sandboxes(images, new SandboxStore(db), root.resolve("sandboxes"), isolators,
                defaultIsolation, events, networks, store);
        this.volumes = new SandboxVolumes(store, sandboxes);
        this.files = new SandboxFiles(sandboxes);
        this.execs = new Execs(sandboxes, events);
        networks.serveNames(this::peers);
        events.subscribe(null, e -> {
            if (NAME_EVENTS.contains(e.action())) {
                refreshPeer(e.id());
            }
        });
    }

    public Networks networks() {
        return networks;
    }

    /** The sandboxes configured to use network {@code name} (whatever their state), for inspect and rm. */
    public List<Sandbox> sandboxesOn(String name) {
        return sandboxes.list().stream().filter(s -> {
            NetworkMode mode = sandboxes.networkMode(s);
            return mode.bridged() && mode.network().equals(name)
                    || sandboxes.joined(s).stream().anyMatch(j -> j.network().equals(name));
        }).toList();
    }

    /**
     * Removes a user network, refused while a sandbox is configured to use it: a running one would lose its bridge,
     * a created or exited one could not start again.
     */
    public UserNetwork removeNetwork(String ref) {
        synchronized (networks) {
            if (Networks.predefined(ref)) {
                return networks.remove(ref); // refused with the reason, whoever uses it
            }
            String name = networks.user(ref).name();
            List<Sandbox> users = sandboxesOn(name);
            if (!users.isEmpty()) {
                throw KilnException.conflict("network " + name + " is in use by sandbox " + String.join(", ",
                        users.stream().map(Sandbox::name).toList()) + " (remove " + (users.size() == 1 ? "it" : "them")
                        + " first)");
            }
            return networks.remove(ref);
        }
    }

    /** Docker's network prune: the user networks no sandbox uses; returns their names. */
    public List<String> pruneNetworks() {
        List<String> removed = new java.util.ArrayList<>();
        for (UserNetwork n : networks.list()) {
            synchronized (networks) {
                if (sandboxesOn(n.name()).isEmpty()) {
                    removed.add(networks.remove(n.name()).name());
                }
            }
        }
        return removed;
    }

    /** The running sandboxes on a network with the names its resolver answers for (at kilnd start only). */
    private List<Peers.Peer> peers(String network) {
        return sandboxesOn(network).stream().<Peers.Peer>flatMap(s -> java.util.stream.Stream.ofNullable(peers(s).get(network)))
                .toList();
    }

    /**
     * A running sandbox on user networks as their resolvers name it: name, hostname, short id and its aliases there
     * ({@code --network-alias} on its first network, those given to connect on the others), by network.
     */
    private Map<String, Peers.Peer> peers(Sandbox s) {
        Map<String, Peers.Peer> out = new java.util.LinkedHashMap<>();
        if (!s.running()) {
            return out;
        }
        List<String> names = List.of(s.name(), Sandboxes.hostname(s), s.shortId());
        String network = networkOf(s);
        if (network != null && !network.equals(KilnNetwork.NAME)) {
            sandboxes.network(s).filter(a -> a.ipAddress() != null && a.network().equals(network))
                    .ifPresent(a -> out.put(network, new Peers.Peer(s.id(), a.ipAddress(),
                            concat(names, s.config().settings().aliases()))));
        }
        for (Sandboxes.Joined j : sandboxes.joined(s)) {
            j.attachment().filter(a -> a.ipAddress() != null && !j.network().equals(KilnNetwork.NAME))
                    .ifPresent(a -> out.put(j.network(), new Peers.Peer(s.id(), a.ipAddress(),
                            concat(names, j.aliases()))));
        }
        return out;
    }

    private static List<String> concat(List<String> a, List<String> b) {
        List<String> out = new java.util.ArrayList<>(a);
        out.addAll(b);
        return out;
    }

    /** The bridge network (default or user) the sandbox is configured for; null for none, host or slirp. */
    private String networkOf(Sandbox s) {
        NetworkMode mode = sandboxes.networkMode(s);
        return mode.bridged() ? mode.network() : null;
    }

    /**
     * Brings the resolvers' tables up to date with sandbox {@code id} after an event that may have changed it. It
     * reads the sandbox's state now rather than trusting the event, so events of two threads delivered out of order
     * still leave the last state in the table. Lock order: a sandbox's lock, then this one (never the other way).
     */
    private void refreshPeer(String id) {
        synchronized (peerLock) {
            try {
                Optional<Sandbox> s = sandboxes.byId(id);
                networks.peer(id, s.map(this::peers).orElse(Map.of()));
            } catch (RuntimeException e) {
                LOG.sandbox(id).warn("cannot update the names of the sandbox: " + e.getMessage(), e);
            }
        }
    }

    /** The guest kernels kilnd's isolations can boot ({@code kiln kernels}); empty when none boots a kernel. */
    public List<GuestKernels.Known> kernels() {
        return isolators.all().stream().flatMap(i -> i.guestKernels().stream()).findFirst()
                .map(GuestKernels::known).orElse(List.of());
    }

    /** The isolations of this kilnd, for those who list them (docker info) or read what they can do. */
    public Isolators isolators() {
        return isolators;
    }

    /** Where builds keep their working trees (a step's overlay, the context): under kiln's root, never in memory. */
    /**
     * What builds of a kilnd that was killed (or stopped while a step's tree was still being deleted) left in the
     * build directory: their contexts and step trees, some still mounted. No build runs before the daemon serves.
     */
    private static void clearBuilds(Path buildRoot) {
        if (!Files.isDirectory(buildRoot)) {
            return;
        }
        for (Path mount : dev.kiln.rootfs.Mounts.under(buildRoot)) {
            dev.kiln.rootfs.Mounts.unmount(mount, false);
        }
        try (var left = Files.list(buildRoot)) {
            left.forEach(dev.kiln.rootfs.Trees::deleteOrWarn);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    public Path buildRoot() {
        return root.resolve("build");
    }

    public Images images() {
        return images;
    }

    public Sandboxes sandboxes() {
        return sandboxes;
    }

    /** The execs of running sandboxes (kiln exec, docker exec), kept in memory until their sandbox is removed. */
    public Execs execs() {
        return execs;
    }

    /** Copies in and out of sandboxes (docker cp). */
    public SandboxFiles files() {
        return files;
    }

    /** The runtime binary or VMM of one sandbox, as inspect shows it (Firecracker or QEMU for a vm). */
    public String runtimeOf(Sandbox s) {
        return sandboxes.runtimeOf(s);
    }

    /** Named and anonymous volumes, with the rules that need the sandboxes (in use, dangling). */
    public SandboxVolumes volumes() {
        return volumes;
    }

    public Events events() {
        return events;
    }

    /** Docker's rmi, refusing images a sandbox uses unless forced; forced, the sandbox keeps the unpacked tree. */
    public List<String> removeImage(String ref, boolean force) {
        Image image = images.resolve(ref);
        boolean used = sandboxes.usesImage(image.id());
        // as Docker: removing one of several names only untags; the image (and its sandboxes) stay
        boolean onlyUntags = image.name().equals(dev.kiln.image.ImageRef.parse(ref).toString())
                && images.store().namesOf(image.id()).size() > 1;
        if (used && !force && !onlyUntags) {
            throw KilnException.conflict("image " + ref + " is in use by a sandbox (remove the sandbox first or use -f)");
        }
        return images.remove(ref, force, used);
    }

    @Override
    public void close() {
        networks.close();
        sandboxes.close();
        images.close();
    }
}
