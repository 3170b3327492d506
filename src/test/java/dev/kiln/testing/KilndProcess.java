package dev.kiln.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * kilnd as its own process, as users run it: {@code java -cp kiln-0.1.0.jar dev.kiln.cli.Main daemon --root R
 * --run-root RR} in its own session (setsid), so killing it touches no sandbox. For the tests that crash and restart
 * the daemon; tests that only need a daemon use {@link TestDaemon} in their own JVM.
 *
 * <p>The built jar, its {@code lib/} and {@code native/kiln-shim} are copied to a private directory first: other
 * builds may rewrite {@code target/} while this daemon (and the shims it starts) run, and a restart must run the same
 * build as the daemon it replaces. Output goes to {@link #log()}.
 */
public final class KilndProcess implements AutoCloseable {

    private static final Duration READY_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);
    private static final Path TEMURIN = Path.of("/usr/lib/jvm/temurin-25-jdk-amd64/bin/java");

    private final Path root;
    private final Path runRoot;
    private final Path dist;
    private final Path log;
    /** kilnd's config file: written from the test's text, or one that does not exist (never the host's). */
    private final Path config;
    private final List<String> properties;
    /** Flags of {@code kiln daemon} besides the roots and the config file. */
    private final List<String> args;
    private Process process;

    private KilndProcess(Path root, Path runRoot, Path dist, Map<String, String> properties, List<String> args) {
        this.root = root;
        this.runRoot = runRoot;
        this.dist = dist;
        this.log = runRoot.resolveSibling(runRoot.getFileName() + "-kilnd.log");
        this.config = dist.resolve("config.yaml");
        this.properties = properties.entrySet().stream().map(e -> "-D" + e.getKey() + "=" + e.getValue()).toList();
        this.args = List.copyOf(args);
    }

    /**
     * Starts kilnd on {@code root}/{@code runRoot} and returns once its socket accepts connections. Skips the calling
     * test when the jar or the shim has not been built.
     */
    public static KilndProcess start(Path root, Path runRoot) {
        return start(root, runRoot, Map.of(), null);
    }

    /** As {@link #start(Path, Path)}, with system properties for kilnd's JVM (e.g. shorter API timeouts). */
    public static KilndProcess start(Path root, Path runRoot, Map<String, String> properties) {
        return start(root, runRoot, properties, null);
    }

    /** As {@link #start(Path, Path)}, with {@code configYaml} as kilnd's /etc/kiln/config.yaml. */
    public static KilndProcess start(Path root, Path runRoot, String configYaml) {
        return start(root, runRoot, Map.of(), configYaml);
    }

    /** As {@link #start(Path, Path)}, with system properties for kilnd's JVM and its config file (null: none). */
    public static KilndProcess start(Path root, Path runRoot, Map<String, String> properties, String configYaml) {
        return start(root, runRoot, properties, configYaml, List.of());
    }

    /** As {@link #start(Path, Path, Map, String)}, with more flags of {@code kiln daemon} (e.g. --log-level). */
    public static KilndProcess start(Path root, Path runRoot, Map<String, String> properties, String configYaml,
                                     List<String> daemonArgs) {
        Path target = projectDir().resolve("target");
        Path jar = target.resolve("kiln-0.1.0.jar");
        Path shim = target.resolve("native/kiln-shim");
        Assumptions.assumeTrue(Files.isRegularFile(jar) && Files.isDirectory(target.resolve("lib")),
                jar + " (and target/lib) not built: run scripts/setup first");
        Assumptions.assumeTrue(Files.isExecutable(shim), shim + " not built: run scripts/setup first");
        Path dist;
        try {
            dist = Files.createTempDirectory("kilnd-dist-");
            Files.copy(jar, dist.resolve(jar.getFileName()));
            Files.createDirectories(dist.resolve("lib"));
            try (Stream<Path> libs = Files.list(target.resolve("lib"))) {
                for (Path lib : libs.toList()) {
                    Files.copy(lib, dist.resolve("lib").resolve(lib.getFileName()));
                }
            }
            Files.createDirectories(dist.resolve("native"));
            Files.copy(shim, dist.resolve("native/kiln-shim"), java.nio.file.StandardCopyOption.COPY_ATTRIBUTES);
            Path init = target.resolve("native/kiln-init"); // the vm isolation's guest init
            if (Files.isExecutable(init)) {
                Files.copy(init, dist.resolve("native/kiln-init"), java.nio.file.StandardCopyOption.COPY_ATTRIBUTES);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot copy kiln's build for kilnd", e);
        }
        KilndProcess k = new KilndProcess(root.toAbsolutePath(), runRoot.toAbsolutePath(), dist, properties,
                daemonArgs);
        try {
            if (configYaml != null) {
                Files.writeString(k.config, configYaml);
            }
        } catch (IOException e) {
            k.close();
            throw new UncheckedIOException("cannot write kilnd's config", e);
        }
        try {
            k.launch();
        } catch (RuntimeException | Error e) {
            k.close();
            throw e;
        }
        return k;
    }

    /** {@code unix://RUN_ROOT/kiln.sock}, for the CLI's {@code --host}. */
    public String host() {
        return "unix://" + socket();
    }

    public Path socket() {
        return runRoot.resolve("kiln.sock");
    }

    public Path root() {
        return root;
    }

    public Path runRoot() {
        return runRoot;
    }

    /** kilnd's stdout and stderr, of every start. */
    public Path log() {
        return log;
    }

    /** The running daemon's pid (the JVM's). */
    public long pid() {
        if (process == null || !process.isAlive()) {
            throw new IllegalStateException("kilnd is not running (see " + log + ")");
        }
        return process.pid();
    }

    public boolean alive() {
        return process != null && process.isAlive();
    }

    /** kiln's jar of the build this daemon runs (a private copy; its manifest's Class-Path names lib/ beside it). */
    public Path jar() {
        return dist.resolve("kiln-0.1.0.jar");
    }

    /**
     * The kiln CLI from the same build, as a command line for {@link ProcessBuilder}, talking to this daemon: for
     * commands whose output a test reads from a real process (logs, exec).
     */
    public List<String> cli(String... args) {
        List<String> cmd = new ArrayList<>(List.of(java().toString(), "--enable-native-access=ALL-UNNAMED",
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", jar().toString(),
                "dev.kiln.cli.Main", "--host", host()));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** SIGKILL to the daemon's JVM, as a crash; returns once it is gone. Sandboxes keep running under their shims. */
    public void kill9() {
        if (process == null) {
            return;
        }
        process.destroyForcibly();
        awaitExit(process, STOP_TIMEOUT);
    }

    /** Stops the daemon if it runs (SIGTERM), then starts it again on the same roots and waits for its socket. */
    public void restart() {
        stop();
        launch();
    }

    /** SIGTERM, then SIGKILL after 10 s. */
    public void stop() {
        if (process == null || !process.isAlive()) {
            return;
        }
        process.destroy();
        try {
            if (!process.waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                process.destroyForcibly();
                awaitExit(process, STOP_TIMEOUT);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
    }

    @Override
    public void close() {
        stop();
        FileTree.deleteRecursively(dist);
        RootBridges.delete(root);
    }

    // ---- internals ----

    private void launch() {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("kilnd already runs as " + process.pid());
        }
        try {
            Files.createDirectories(runRoot);
            Files.createDirectories(root);
            // under umask 077, as from a careful root shell: kilnd must set its own mask (what it creates for a
            // non-root workload, its root directory included, must not follow the starting shell's)
            List<String> cmd = new ArrayList<>(List.of("setsid", "sh", "-c", "umask 077 && exec \"$@\"", "kilnd",
                    java().toString()));
            cmd.addAll(properties);
            cmd.addAll(List.of("-Dkiln.shim=" + dist.resolve("native/kiln-shim"), "--enable-native-access=ALL-UNNAMED",
                    "-cp", dist.resolve("kiln-0.1.0.jar").toString(), "dev.kiln.cli.Main", "daemon",
                    "--root", root.toString(), "--run-root", runRoot.toString(),
                    // hermetic: never the host's /etc/kiln/config.yaml
                    "--config", config.toString()));
            cmd.addAll(args);
            Files.writeString(log, "---- " + String.join(" ", cmd) + "\n", StandardCharsets.UTF_8,
                    java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
            process = new ProcessBuilder(cmd)
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                    .redirectErrorStream(true)
                    .start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start kilnd", e);
        }
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        while (true) {
            if (accepts(socket())) {
                return;
            }
            if (!process.isAlive()) {
                throw new IllegalStateException("kilnd exited with " + process.exitValue() + " before listening: "
                        + Command.tail(log));
            }
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException("kilnd did not accept on " + socket() + " within "
                        + READY_TIMEOUT.toSeconds() + " s: " + Command.tail(log));
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for kilnd", e);
            }
        }
    }

    /** True when a connection to {@code socket} succeeds (a stale socket file of a killed daemon refuses). */
    private static boolean accepts(Path socket) {
        if (!Files.exists(socket)) {
            return false;
        }
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            return c.isConnected();
        } catch (IOException e) {
            return false;
        }
    }

    private static void awaitExit(Process p, Duration timeout) {
        try {
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new IllegalStateException("kilnd " + p.pid() + " did not exit within " + timeout.toSeconds() + " s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static Path java() {
        if (Files.isExecutable(TEMURIN)) {
            return TEMURIN;
        }
        return Path.of(System.getProperty("java.home"), "bin", "java");
    }

    public static Path projectDir() {
        String basedir = System.getProperty("basedir");
        return (basedir != null ? Path.of(basedir) : Path.of("")).toAbsolutePath();
    }
}
