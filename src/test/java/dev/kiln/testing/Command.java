package dev.kiln.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/** Runs an external tool with a timeout; a failure's message carries the command line and its stderr. */
public final class Command {
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(120);

    private Command() {}

    /** Skips the calling test (JUnit assumption) when {@code binary} is not an executable on PATH. */
    public static Path require(String binary, String debianPackage) {
        Path found = which(binary);
        Assumptions.assumeTrue(found != null,
                binary + " not found on PATH (install the Debian package '" + debianPackage + "')");
        return found;
    }

    /** The executable named {@code binary} on PATH, or null. */
    public static Path which(String binary) {
        String path = System.getenv().getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin");
        for (String dir : path.split(":")) {
            Path candidate = Path.of(dir.isEmpty() ? "." : dir, binary);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) return candidate;
        }
        return null;
    }

    /** Runs {@code argv} with the default timeout and returns its stdout; throws unless it exits 0. */
    public static String run(String... argv) {
        return run(DEFAULT_TIMEOUT, List.of(argv));
    }

    /** Runs {@code argv}, returns its stdout; throws unless it exits 0 within {@code timeout}. */
    public static String run(Duration timeout, List<String> argv) {
        Path out = null;
        Path err = null;
        try {
            out = Files.createTempFile("kiln-cmd-", ".out");
            err = Files.createTempFile("kiln-cmd-", ".err");
            Process process = new ProcessBuilder(argv)
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(out.toFile())
                    .redirectError(err.toFile())
                    .start();
            if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                destroyTree(process.toHandle());
                throw new IllegalStateException("timed out after " + timeout.toSeconds() + " s: "
                        + String.join(" ", argv) + "\nstderr: " + tail(err));
            }
            if (process.exitValue() != 0) {
                throw new IllegalStateException("exit " + process.exitValue() + ": " + String.join(" ", argv)
                        + "\nstderr: " + tail(err) + "\nstdout: " + tail(out));
            }
            return Files.readString(out, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run " + String.join(" ", argv), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted: " + String.join(" ", argv), e);
        } finally {
            deleteQuietly(out);
            deleteQuietly(err);
        }
    }

    /** Kills a process and all its descendants, waiting briefly for each to go. */
    public static void destroyTree(ProcessHandle root) {
        List<ProcessHandle> all = new java.util.ArrayList<>(root.descendants().toList());
        all.add(root);
        all.forEach(ProcessHandle::destroy);
        for (ProcessHandle handle : all) {
            try {
                handle.onExit().get(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                handle.destroyForcibly();
            }
        }
    }

    /** The last ~4 KiB of a text file, for error messages. */
    static String tail(Path file) {
        try {
            String text = Files.readString(file, StandardCharsets.UTF_8).strip();
            return text.length() <= 4096 ? text : "..." + text.substring(text.length() - 4096);
        } catch (IOException e) {
            return "(unreadable: " + e.getMessage() + ")";
        }
    }

    private static void deleteQuietly(Path file) {
        if (file == null) return;
        try {
            Files.deleteIfExists(file);
        } catch (IOException ignored) {
            // a leftover temp file is harmless
        }
    }
}
