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

    ShimLog(PrintStream out, String id) {
        this.out = out;
        this.id = id;
    }

    void line(String message) {
        out.println(Instant.now() + " containerd-shim-kiln-v2 " + id + ": " + message);
        out.flush();
    }
}
