package dev.kiln.engine;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.network.Attachment;
import dev.kiln.network.KilnNetwork;
import dev.kiln.network.Networks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The networks a sandbox joined after its first ({@code network connect}), kept in its directory
 * ({@value #FILE}: the network, the sandbox's aliases and asked-for address there, its interface) so that each start
 * joins them again, as Docker's connected networks survive a restart. While it runs, each has its attachment record
 * ({@code network-NAME.json}): a second veth from the sandbox's namespace to that network's bridge.
 */
final class SandboxConnections {
    private static final KilnLog LOG = KilnLog.of(SandboxConnections.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    static final String FILE = "connected.json";

    /** A network joined with {@code network connect}: its name, the sandbox's aliases and --ip there, its ifname. */
    record Connection(String network, List<String> aliases, String ip, String ifname) {
        Connection {
            aliases = aliases == null ? List.of() : List.copyOf(aliases);
        }
    }

    private final Networks networks;

    SandboxConnections(Networks networks) {
        this.networks = networks;
    }

    List<Connection> of(Path dir) {
        Path file = dir.resolve(FILE);
        if (!Files.exists(file)) { // most sandboxes join no second network: no NoSuchFileException per look
            return List.of();
        }
        try {
            return JSON.readValue(Files.readAllBytes(file), new TypeReference<List<Connection>>() { });
        } catch (java.nio.file.NoSuchFileException e) {
            return List.of();
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.CORRUPT, "cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    void save(Path dir, List<Connection> connections) {
        Path file = dir.resolve(FILE);
        try {
            if (connections.isEmpty()) {
                Files.deleteIfExists(file);
                return;
            }
            Path tmp = dir.resolve("." + FILE + ".tmp");
            JSON.writeValue(tmp.toFile(), connections);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    static Path stateFile(Path dir, String network) {
        return dir.resolve("network-" + network + ".json");
    }

    /** The sandbox's place on a joined network while it runs. */
    Optional<Attachment> attachment(Path dir, Connection c) {
        return KilnNetwork.read(stateFile(dir, c.network()));
    }

    /** The next free interface: eth1, eth2, ... */
    static String nextIfname(List<Connection> connections) {
        int max = 0;
        for (Connection c : connections) {
            max = Math.max(max, Integer.parseInt(c.ifname().substring(3)));
        }
        return "eth" + (max + 1);
    }

    /** Joins a running sandbox (its namespace made by its first network) to one more network. */
    Attachment join(String sandboxId, Path dir, Connection c) {
        return networks.join(c.network(), sandboxId, c.ifname(), stateFile(dir, c.network()), c.ip());
    }

    /** At start, after the first network's attach: joins every recorded network again. */
    void joinAll(String sandboxId, Path dir) {
        for (Connection c : of(dir)) {
            join(sandboxId, dir, c);
        }
    }

    /** Leaves one joined network (its veth deleted with CNI DEL); nothing to do when not attached. */
    void leave(Path dir, String network) {
        networks.detach(stateFile(dir, network));
    }

    /** Before the first network's detach (which deletes the namespace): leaves every joined one, reporting failures. */
    void leaveAll(Path dir) {
        for (Connection c : of(dir)) {
            try {
                leave(dir, c.network());
            } catch (RuntimeException e) {
                LOG.warn("cannot take the sandbox off network " + c.network() + ": " + e.getMessage(), e);
            }
        }
    }

    static List<Connection> without(List<Connection> connections, String network) {
        List<Connection> out = new ArrayList<>(connections);
        out.removeIf(c -> c.network().equals(network));
        return out;
    }
}
