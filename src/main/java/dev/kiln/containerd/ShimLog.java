package dev.kiln.containerd;

import java.io.PrintStream;
import java.time.Instant;

/**
 * The shim's log: lines on its stderr, which the daemon's launcher points at containerd's {@code log} fifo in the
 * bundle, so they appear in containerd's own log as its shims' do.
 */
final class ShimLog {
    private final PrintStream out;
    private final String id;
    private final boolean debug;

    ShimLog(PrintStream out, String id) {
        this(out, id, false);
    }

    /** With {@code debug} (containerd passes {@code -debug} to its shims when its own log level is debug), the
     * {@link #debug} lines too: each request's time and a Create's steps, to see where a pod's start goes. */
    ShimLog(PrintStream out, String id, boolean debug) {
        this.out = out;
        this.id = id;
        this.debug = debug;
    }

    boolean debugging() {
        return debug;
    }

    void debug(String message) {
        if (debug) line(message);
    }

    void line(String message) {
        out.println(Instant.now() + " containerd-shim-kiln-v2 " + id + ": " + message);
        out.flush();
    }
}
