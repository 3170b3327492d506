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
            List<String> cmd = new ArrayList<>(List.of("setsid", java, "--enable-native-access=ALL-UNNAMED",
                    "-cp", System.getProperty("java.class.path"), Main.class.getName(), "daemon",
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

    private static String lastLine(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return lines.isEmpty() ? "no output" : lines.getLast();
        } catch (IOException e) {
            return "no log";
        }
    }
}
