package dev.kiln.api;

import dev.kiln.KilnException;

import java.time.Duration;

/**
 * How long and how much kilnd waits for its clients, so that slow or stalled ones cannot hold it (see
 * docs/daemon-api.md, "Limits"):
 * <ul>
 * <li>{@code idleTimeout}: a connection that sends nothing for this long before or between requests (TLS handshake,
 * request line, headers, keep-alive) is closed; a request body must arrive within this long plus one second per
 * {@code minBodyRate} bytes received, counting only the time kilnd waits for the client. Once a request is read the
 * answer has no timeout: logs, events, attach and wait stay quiet for as long as they need, as Docker's do.</li>
 * <li>{@code unfinishedPerPeer}: request bodies kilnd waits for at once from one peer (a user on the unix socket,
 * by SO_PEERCRED; an address on TCP). Beyond it the body that has waited longest is cut (408), or, when every one
 * of them is moving, the newcomer is refused (429). Other peers never wait for it.</li>
 * </ul>
 * Production keeps the defaults; tests shorten them with the system properties {@value #IDLE_TIMEOUT_PROPERTY} and
 * {@value #PER_PEER_PROPERTY}.
 */
public record ApiLimits(Duration idleTimeout, long minBodyRate, int unfinishedPerPeer) {

    static final String IDLE_TIMEOUT_PROPERTY = "kiln.api.idle-timeout-ms";
    static final String PER_PEER_PROPERTY = "kiln.api.unfinished-per-peer";
    static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofSeconds(30);
    /** Bytes per second of body that each earn one more second (Apache's mod_reqtimeout uses the same rule). */
    static final long DEFAULT_MIN_BODY_RATE = 500;
    static final int DEFAULT_UNFINISHED_PER_PEER = 64;
    /**
     * The listen backlog of every listener (the kernel caps it at net.core.somaxconn, as Go's listeners do): with
     * Java's default of 50, a burst of connections made new clients' connect fail with EAGAIN before kilnd could
     * accept and sort them.
     */
    public static final int ACCEPT_QUEUE = 4096;

    public ApiLimits {
        if (idleTimeout.isNegative() || idleTimeout.isZero()) {
            throw KilnException.invalid("kilnd's idle timeout must be positive, not " + idleTimeout);
        }
        if (minBodyRate <= 0 || unfinishedPerPeer <= 0) {
            throw KilnException.invalid("kilnd's body rate and per-peer limit must be positive");
        }
    }

    static ApiLimits defaults() {
        return new ApiLimits(DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_BODY_RATE, DEFAULT_UNFINISHED_PER_PEER);
    }

    /** The defaults, with the system properties' values where they are set. */
    public static ApiLimits fromSystemProperties() {
        return new ApiLimits(Duration.ofMillis(longProperty(IDLE_TIMEOUT_PROPERTY, DEFAULT_IDLE_TIMEOUT.toMillis())),
                DEFAULT_MIN_BODY_RATE, Math.toIntExact(longProperty(PER_PEER_PROPERTY, DEFAULT_UNFINISHED_PER_PEER)));
    }

    private static long longProperty(String name, long fallback) {
        String v = System.getProperty(name);
        if (v == null || v.isBlank()) {
            return fallback;
        }
        try {
            return Long.parseLong(v.strip());
        } catch (NumberFormatException e) {
            throw KilnException.invalid("-D" + name + "=" + v + " is not a number");
        }
    }
}
