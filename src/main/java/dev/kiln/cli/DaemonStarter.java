package dev.kiln.cli;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Starts kilnd in the background when no daemon answers on the default socket, so {@code kiln run} needs no set-up:
 * the same java and class path as this CLI, its own session (setsid), output to {@code RUN_ROOT/kilnd.log}.
 */
final class DaemonStarter {
    private DaemonStarter() {
    }

    static void start(Path root, Path runRoot, List<String> insecureRegistries, boolean debug) {
        try {
            Files.createDirectories(runRoot);
            Path log = runRoot.resolve("kilnd.log");
            try { // owner-only, as everything kilnd keeps: its errors may quote a sandbox's settings
                Files.createFile(log, OwnerOnly.FILE);
            } catch (FileAlreadyExistsException e) {
                Files.setPosixFilePermissions(log, OwnerOnly.FILE_MODE);
            }
            String java = ProcessHandle.current().info().command()
                    .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            String classPath = System.getProperty("java.class.path");
            List<String> cmd = new ArrayList<>(List.of("setsid", java));
            cmd.addAll(jvmFlags(classPath));
            cmd.addAll(List.of("--enable-native-access=ALL-UNNAMED", "-cp", classPath, Main.class.getName(), "daemon",
                    "--root", root.toString(), "--run-root", runRoot.toString()));
            insecureRegistries.forEach(h -> cmd.addAll(List.of("--insecure-registry", h)));
            if (debug) {
                cmd.add("--debug");
            }
            Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                    .redirectErrorStream(true).start();
            DaemonClient probe = new DaemonClient(runRoot.resolve("kiln.sock"));
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (System.nanoTime() < deadline) {
                try {
                    probe.connect().close();
                    return;
                } catch (IOException notYet) {
                    if (!p.isAlive()) {
                        throw new KilnException(KilnException.Kind.UNAVAILABLE, "kilnd failed to start: "
                                + lastLine(log) + " (see " + log + ")");
                    }
                    Thread.sleep(50);
                }
            }
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "kilnd did not answer within 30 s (see " + log + ")");
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot start kilnd: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while starting kilnd");
        }
    }

    /**
     * kilnd's JVM flags as bin/kiln gives them to {@code kiln daemon}: the serial GC, and kilnd's AOT cache
     * ({@code target/kilnd.aot} beside the jar, made by scripts/aot-cache with these flags) unless it is older than
     * the jar, which the JVM would refuse, or KILN_NO_AOT is set.
     */
    static List<String> jvmFlags(String classPath) {
        List<String> flags = new ArrayList<>(List.of("-XX:+UseSerialGC"));
        try {
            Path jar = Path.of(classPath.split(java.io.File.pathSeparator)[0]).toAbsolutePath();
            Path cache = jar.resolveSibling("kilnd.aot");
            if (System.getenv("KILN_NO_AOT") == null && jar.getFileName().toString().endsWith(".jar")
                    && Files.isRegularFile(cache)
                    && Files.getLastModifiedTime(cache).compareTo(Files.getLastModifiedTime(jar)) > 0) {
                flags.addAll(List.of("-XX:AOTCache=" + cache, "-Xlog:aot=off", "-Xlog:cds=off"));
            }
        } catch (IOException | RuntimeException e) {
            // no cache: kilnd starts as before, only slower
        }
        return flags;
    }

    private static String lastLine(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return lines.isEmpty() ? "no output" : lines.getLast();
        } catch (IOException e) {
            return "no log";
        }
    }
}
