package dev.kiln.network;

import dev.kiln.KilnException;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * The bridge networks of a kiln root, by name: {@code kiln} (the default, made on first use) and the ones made with
 * {@code kiln network create}. Each is a conflist in {@code ROOT/network/}; nothing exists on the host until a
 * sandbox attaches.
 */
public final class Networks {

    static final Pattern VALID_NAME = Pattern.compile("[a-zA-Z0-9][a-zA-Z0-9_.-]*");

    private final Path root;
    private final Map<String, KilnNetwork> known = new ConcurrentHashMap<>();

    public Networks(Path root) {
        this.root = root;
    }

    /** The network named {@code name}; refused with one line when there is none. */
    public KilnNetwork get(String name) {
        if (name.equals(KilnNetwork.NAME)) {
            return known.computeIfAbsent(name, n -> KilnNetwork.forRoot(root));
        }
        KilnNetwork n = known.get(name);
        if (n == null) {
            throw KilnException.notFound("network " + name + " not found (see kiln network ls)");
        }
        return n;
    }

    /** Undoes a sandbox's attachment recorded in {@code stateFile}, on whichever network it names. */
    public void detach(Path stateFile) {
        KilnNetwork.read(stateFile).ifPresent(a -> get(a.network()).detach(stateFile));
    }
}
