package dev.kiln.containerd;

import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/** A task's or exec's terminal: the pty master's output to its stdout fifo/file, its stdin fifo to the master. */
final class TerminalCopy {
    private TerminalCopy() {
    }

    /** Starts both copies; returns the output copier (to be joined at exit), or null when there is no stdout. */
    static Thread start(int master, StdioUri stdin, StdioUri stdout, String name) {
        Thread out = null;
        if (stdout.kind() != StdioUri.Kind.NONE) {
            out = Thread.ofPlatform().daemon().name(name + "-out").start(() -> {
                try (OutputStream o = new FileOutputStream(stdout.path().toFile(), stdout.kind() == StdioUri.Kind.FILE)) {
                    byte[] buf = new byte[32 * 1024];
                    int n;
                    while ((n = Libc.read(master, buf)) > 0) {
                        o.write(buf, 0, n);
                        o.flush();
                    }
                } catch (IOException ignored) {
                    // the client closed its end
                }
            });
        }
        if (stdin.kind() == StdioUri.Kind.FIFO) {
            Thread.ofPlatform().daemon().name(name + "-in").start(() -> {
                try (InputStream in = new FileInputStream(stdin.path().toFile())) {
                    byte[] buf = new byte[8192];
                    int n;
                    while ((n = in.read(buf)) > 0) {
                        if (!Libc.write(master, buf, n)) return;
                    }
                } catch (IOException ignored) {
                    // the client closed stdin
                }
            });
        }
        return out;
    }
}
