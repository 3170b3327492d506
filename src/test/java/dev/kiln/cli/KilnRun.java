package dev.kiln.cli;

import dev.kiln.testing.BusyboxRootfs;
import dev.kiln.testing.TestDaemon;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Runs the kiln CLI in this JVM against a private kilnd (started on first use, in this JVM too), capturing what a
 * user would see. Close it to stop the daemon.
 */
final class KilnRun implements AutoCloseable {

    record Result(int exitCode, String out, String err) {
        List<String> errLines() {
            return err.lines().toList();
        }
    }

    private final Path root;
    private final Path config;
    private TestDaemon daemon;

    KilnRun(Path root) {
        this(root, Path.of("/nonexistent/kiln.yaml"));
    }

    /** With {@code config} as the daemon's config.yaml. */
    KilnRun(Path root, Path config) {
        this.root = root;
        this.config = config;
    }

    Path store() {
        return root.resolve("store");
    }

    synchronized String host() {
        if (daemon == null) {
            daemon = new TestDaemon(store(), root.resolve("run"), config);
        }
        return daemon.host();
    }

    Result kiln(String... args) {
        return withStdin(new byte[0], args);
    }

    /** Runs with {@code stdin} as the CLI's standard input. */
    Result withStdin(byte[] stdin, String... args) {
        List<String> all = new ArrayList<>(List.of("--host", host()));
        all.addAll(List.of(args));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(all.toArray(String[]::new), new Main.Stdio(new ByteArrayInputStream(stdin), out, err));
        return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** Imports the busybox root filesystem ({@link BusyboxRootfs}), {@code extra} files added, as {@code image}. */
    void importBusybox(String image, Map<String, String> extra) throws IOException {
        ok("import", BusyboxRootfs.tarball(root, extra).toString(), image);
    }

    Result ok(String... args) {
        Result r = kiln(args);
        if (r.exitCode() != 0) {
            throw new AssertionError("kiln " + String.join(" ", args) + " exited " + r.exitCode() + ": " + r.err()
                    + r.out());
        }
        return r;
    }

    /** Removes every sandbox, running or not. */
    void removeSandboxes() {
        for (String id : kiln("ps", "-a", "-q", "--no-trunc").out().lines().toList()) {
            kiln("rm", "-f", id);
        }
    }

    /** Stops the daemon and leaves its sandboxes as they are, as a crash of kilnd would; see {@link #startDaemon}. */
    synchronized void stopDaemon() {
        if (daemon != null) {
            daemon.close();
            daemon = null;
        }
    }

    /** Starts the daemon unless it runs (a new one reconciles the sandboxes it finds in the store). */
    void startDaemon() {
        host();
    }

    /** Removes every sandbox (a failed test may leave running ones), then stops the daemon. */
    @Override
    public synchronized void close() {
        if (daemon != null) {
            removeSandboxes();
            stopDaemon();
        }
    }
}
