package dev.kiln.isolation.vm;

import dev.kiln.KilnException;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs a host tool (mkfs.erofs, mkfs.ext4) to its end, bounded, and turns a failure into one line. */
final class Tool {
    private Tool() {
    }

    static void run(List<String> cmd, Duration timeout, String package_) {
        Path err = null;
        try {
            err = Files.createTempFile("kiln-tool-", ".err");
            Process p;
            try {
                p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                        .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(err.toFile()).start();
            } catch (IOException e) {
                throw new KilnException(KilnException.Kind.UNAVAILABLE, "the vm isolation needs " + cmd.getFirst()
                        + " (apt-get install " + package_ + "): " + e.getMessage());
            }
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                throw new KilnException(KilnException.Kind.INTERNAL, cmd.getFirst() + " did not finish within "
                        + timeout.toSeconds() + " s");
            }
            if (p.exitValue() != 0) {
                String text = Files.readString(err, StandardCharsets.UTF_8).strip();
                String last = text.lines().reduce((a, b) -> b).orElse("exit " + p.exitValue());
                throw new KilnException(KilnException.Kind.INTERNAL, String.join(" ", cmd.subList(0, 1)) + " failed: " + last);
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot run " + cmd.getFirst() + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while running " + cmd.getFirst());
        } finally {
            if (err != null) {
                try {
                    Files.deleteIfExists(err);
                } catch (IOException ignored) {
                    // a leftover temp file is harmless
                }
            }
        }
    }
}
