package dev.kiln.network;

import java.util.List;

/**
 * Who is on a network right now, for its resolver: the engine knows the sandboxes, the network package only their
 * addresses and names (dependencies point from the engine to the network, not back).
 */
@FunctionalInterface
public interface Peers {

    /** A running sandbox on a network: its id, address and the names it answers to (name, hostname, short id). */
    record Peer(String id, String address, List<String> names) {
        public Peer {
            names = List.copyOf(names);
        }
    }

    List<Peer> on(String network);
}
