package dev.kiln.api.daemon;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.engine.Engine;
import dev.kiln.isolation.Isolators;
import dev.kiln.isolation.standard.StandardIsolators;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;

/** kilnd's composition root: configuration, the engine with its isolators, the server, and shutdown. */
public final class Kilnd {
    private static final KilnLog LOG = KilnLog.of(Kilnd.class);

    private Kilnd() {
    }

    /** {@code /etc/kiln/config.yaml}; command-line flags win over it. Unknown keys are refused. */
    @JsonIgnoreProperties(ignoreUnknown = false)
    record ConfigFile(@JsonProperty("default-isolation") String defaultIsolation,
                      @JsonProperty("insecure-registries") List<String> insecureRegistries,
                      @JsonProperty("runsc-platform") String runscPlatform,
                      @JsonProperty("kernel") String kernel,
                      @JsonProperty("default-subnet") String defaultSubnet,
                      @JsonProperty("runtime-paths") Map<String, String> runtimePaths,
                      @JsonProperty("log-level") String logLevel,
                      @JsonProperty("vmm-jail") Boolean vmmJail,
                      @JsonProperty("vmm-uid-range") String vmmUidRange,
                      @JsonProperty("vm-snapshot") Boolean vmSnapshot) {
    }

    /**
     * {@code tcpListeners}: TCP listeners with mutual TLS besides the unix socket (none by default); {@code kernel}:
     * the vm isolation's default kernel (null: the host's newest cloud kernel); {@code defaultSubnet}: the kiln
     * network's (null: picked clear of the host's routes); {@code runtimePaths}: runtime binaries (runc, runsc,
     * qemu-system-x86_64, firecracker) at paths of their own instead of on PATH; {@code logLevel}: debug, info, warn
     * or error (the flag's, else config.yaml's, else debug with --debug, else info); {@code vmmJail}: QEMU in its
     * jail (docs/vm.md; false only for debugging); {@code vmmUidRange}: the ids jailed VMMs run as (null: default);
     * {@code vmSnapshot}: QEMU VMs start from a snapshot of a booted guest (docs/vm.md, "Snapshot start").
     */
    public record Options(Path root, Path runRoot, Set<String> insecureRegistries, String defaultIsolation,
                          String runscPlatform, boolean debug, List<TlsListener> tcpListeners, Path kernel,
                          String defaultSubnet, Map<String, Path> runtimePaths, String logLevel, boolean vmmJail,
                          String vmmUidRange, boolean vmSnapshot) {

        public Options {
            tcpListeners = List.copyOf(tcpListeners);
            runtimePaths = Map.copyOf(runtimePaths);
        }

        /** These options with kilnd also listening on {@code listeners} ({@link TlsListener#of}). */
        public Options withTcpListeners(List<TlsListener> listeners) {
            return new Options(root, runRoot, insecureRegistries, defaultIsolation, runscPlatform, debug, listeners,
                    kernel, defaultSubnet, runtimePaths, logLevel, vmmJail, vmmUidRange, vmSnapshot);
        }

        /** These options with {@code --log-level}'s {@code level} (null: as they are). */
        public Options withLogLevel(String level) {
            return level == null ? this : new Options(root, runRoot, insecureRegistries, defaultIsolation,
                    runscPlatform, debug, tcpListeners, kernel, defaultSubnet, runtimePaths,
                    DaemonLog.level(level, ""), vmmJail, vmmUidRange, vmSnapshot);
        }

        public static Options read(Path configFile, Path root, Path runRoot, List<String> insecure,
                                   String defaultIsolation, boolean debug) {
            ConfigFile file = new ConfigFile(null, List.of(), null, null, null, Map.of(), null, null, null, null);
            if (Files.isRegularFile(configFile)) {
                try {
                    file = new ObjectMapper(new YAMLFactory()).readValue(configFile.toFile(), ConfigFile.class);
                } catch (IOException e) {
                    throw KilnException.invalid("cannot read " + configFile + ": "
                            + e.getMessage().lines().findFirst().orElse(""));
                }
            }
            Set<String> registries = new LinkedHashSet<>(insecure);
            if (file.insecureRegistries() != null) {
                registries.addAll(file.insecureRegistries());
            }
            String isolation = defaultIsolation != null ? defaultIsolation
                    : file.defaultIsolation(); // null: the first isolator registered
            Map<String, Path> runtimePaths = new LinkedHashMap<>();
            if (file.runtimePaths() != null) {
                file.runtimePaths().forEach((name, path) -> {
                    if (path == null || !Path.of(path).isAbsolute()) {
                        throw KilnException.invalid("runtime-paths in " + configFile + ": the path of " + name
                                + " must be absolute");
                    }
                    runtimePaths.put(name, Path.of(path));
                });
            }
            return new Options(root, runRoot, registries, isolation,
                    file.runscPlatform() != null ? file.runscPlatform() : "ptrace", debug, List.of(),
                    file.kernel() != null ? Path.of(file.kernel()) : null, file.defaultSubnet(), runtimePaths,
                    file.logLevel() != null ? DaemonLog.level(file.logLevel(), " in " + configFile)
                            : debug ? "debug" : "info", file.vmmJail() == null || file.vmmJail(), file.vmmUidRange(),
                    file.vmSnapshot() != null && file.vmSnapshot());
        }
    }

    /** kilnd's isolators, registered in one place. */
    public static Isolators isolators(Options o) {
        return StandardIsolators.create(new StandardIsolators.Options(o.root(), o.runRoot(), o.runscPlatform(),
                o.kernel(), o.runtimePaths(), o.vmmJail(), o.vmmUidRange(), o.vmSnapshot()));
    }

    /** A started kilnd: engine and server. Closing it stops serving; sandboxes keep running under their shims. */
    public record Running(Engine engine, Daemon daemon) implements AutoCloseable {
        public Path socket() {
            return daemon.socket();
        }

        @Override
        public void close() {
            daemon.close();
            engine.close();
        }
    }

    public static Running start(Options o) {
        Isolators isolators = isolators(o);
        String defaultIsolation = o.defaultIsolation() != null ? o.defaultIsolation()
                : isolators.all().getFirst().isolation().name();
        if (isolators.find(defaultIsolation).isEmpty()) {
            throw KilnException.invalid("unknown default isolation \"" + defaultIsolation + "\" (available: "
                    + String.join(", ", isolators.all().stream().map(i -> i.isolation().name()).toList()) + ")");
        }
        Umask.set(Umask.DAEMON);
        StateRoots.secure(o.root(), o.runRoot()); // before anything is written under them
        Engine engine = new Engine(o.root(), o.runRoot(), o.insecureRegistries(), isolators, defaultIsolation,
                o.defaultSubnet());
        Daemon daemon = new Daemon(engine, o.runRoot(), o.tcpListeners());
        try {
            daemon.start();
        } catch (RuntimeException e) {
            engine.close();
            throw e;
        }
        return new Running(engine, daemon);
    }

    /** {@code kiln daemon}: serves until SIGTERM/SIGINT. */
    public static void run(Options o) throws InterruptedException {
        DaemonLog.configure(o.logLevel()); // before anything logs, Jetty included
        Running running = start(o);
        writePid(o.runRoot());
        LOG.info("listening on " + running.socket() + " (root " + o.root() + ")");
        for (String tcp : running.daemon().tcpAddresses()) {
            LOG.info("listening on " + tcp + " (TLS; client certificates signed by the --tlscacert CA only)");
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            running.close();
            try {
                Files.deleteIfExists(o.runRoot().resolve("kilnd.pid"));
            } catch (IOException ignored) {
                // a stale pid file names a dead process; the next start overwrites it
            }
            stopped.countDown();
        }));
        running.daemon().join();
        stopped.await();
    }

    private static void writePid(Path runRoot) {
        try {
            Files.writeString(runRoot.resolve("kilnd.pid"), ProcessHandle.current().pid() + "\n");
        } catch (IOException e) {
            LOG.warn("cannot write " + runRoot.resolve("kilnd.pid") + ": " + e.getMessage());
        }
    }
}
