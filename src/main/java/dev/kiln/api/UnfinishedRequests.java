package dev.kiln.api;

import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;
import org.eclipse.jetty.server.Request;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The request bodies kilnd is waiting for, per peer, and the bound on them ({@link ApiLimits#unfinishedPerPeer}).
 * A body counts from the first time kilnd has to wait for it until it is read, refused or abandoned; a body that
 * arrived with its headers never counts. One peer over its bound loses its own body that has waited longest (it is
 * cut, 408), or, when all of them are moving, the new one is refused (429): slow clients of one peer never make kilnd
 * refuse another peer, nor a well-behaved request of their own peer while they stall.
 */
public final class UnfinishedRequests {

    /** A body waiting at least this long is stalled rather than merely between two packets. */
    private static final long STALL_NANOS = TimeUnit.SECONDS.toNanos(1);

    private final int perPeer;
    private final Map<String, List<RequestBody>> byPeer = new HashMap<>();

    UnfinishedRequests(int perPeer) {
        this.perPeer = perPeer;
    }

    /**
     * Counts {@code body} as unfinished for its peer. Over the bound, cuts that peer's body that has waited longest
     * if it has waited at least a second, else refuses {@code body}.
     */
    void admit(RequestBody body) {
        RequestBody victim = null;
        synchronized (this) {
            List<RequestBody> mine = byPeer.computeIfAbsent(body.peer(), k -> new ArrayList<>());
            if (mine.size() >= perPeer) {
                long now = System.nanoTime();
                long oldest = 0;
                for (RequestBody b : mine) {
                    long waited = b.waitedSoFar(now);
                    if (waited >= STALL_NANOS && waited > oldest) {
                        victim = b;
                        oldest = waited;
                    }
                }
                if (victim == null) {
                    throw RefusedRequest.tooMany("kilnd is already reading " + mine.size() + " request bodies from "
                            + body.peer() + ", all of them moving (at most " + perPeer + " at once); retry");
                }
                mine.remove(victim);
            }
            mine.add(body);
        }
        if (victim != null) {
            victim.cut("kilnd cut this request: its body stalled while " + body.peer() + " had " + perPeer
                    + " unfinished request bodies (the most kilnd waits for from one peer)");
        }
    }

    synchronized void release(RequestBody body) {
        List<RequestBody> mine = byPeer.get(body.peer());
        if (mine != null && mine.remove(body) && mine.isEmpty()) {
            byPeer.remove(body.peer());
        }
    }

    /**
     * Who sent {@code request}: on the unix socket the user of the connecting process (SO_PEERCRED, which the client
     * cannot forge), on TCP the remote address.
     */
    static String peerOf(Request request) {
        Object transport = request.getConnectionMetaData().getConnection().getEndPoint().getTransport();
        if (transport instanceof SocketChannel ch) {
            try {
                if (ch.getRemoteAddress() instanceof UnixDomainSocketAddress) {
                    UnixDomainPrincipal p = ch.getOption(ExtendedSocketOptions.SO_PEERCRED);
                    return "user " + p.user().getName();
                }
            } catch (IOException | UnsupportedOperationException e) {
                return "an unknown local peer";
            }
        }
        SocketAddress remote = request.getConnectionMetaData().getRemoteSocketAddress();
        if (remote instanceof InetSocketAddress inet && inet.getAddress() != null) {
            return "address " + inet.getAddress().getHostAddress();
        }
        return remote instanceof UnixDomainSocketAddress ? "an unknown local peer" : "peer " + remote;
    }
}
