package dev.kiln.engine;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The bytes a sandbox's directory holds on disk (its writable layer or disk, bundle and log): what removing it frees,
 * as prune's {@code SpaceReclaimed} reports. Allocated blocks, not apparent sizes: a vm's writable disk is sparse.
 * {@code du} reads them (Java has no st_blocks); 0 when it cannot tell.
 */
final class DiskUsage {
    private DiskUsage() {
    }

    static long of(Path dir) {
        if (!Files.isDirectory(dir)) {
            return 0;
        }
        try {
            Process p = new ProcessBuilder("du", "-s", "-x", "-B1", dir.toString())
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return 0;
            }
            String first = out.strip().split("\\s+")[0];
            return first.matches("\\d+") ? Long.parseLong(first) : 0;
        } catch (IOException e) {
            return 0;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 0;
        }
    }
}
