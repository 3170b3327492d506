package dev.kiln.cli;

import dev.kiln.api.daemon.Kilnd;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.List;

/**
 * The training run behind the AOT cache (scripts/aot-cache): starts a throw-away kilnd in this JVM and runs the
 * CLI's common commands against it, so the classes they load (CLI, HTTP client, JSON) go into the cache. Not part of
 * kiln's user interface.
 */
public final class AotTraining {
    private AotTraining() {
    }

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        try (Kilnd.Running daemon = Kilnd.start(Kilnd.Options.read(Path.of("/nonexistent"), dir.resolve("root"),
                dir.resolve("run"), List.of(), null, false))) {
            String host = "unix://" + daemon.socket();
            String[][] runs = {
                {"--version"},
                {"--help"},
                {"--host", host, "images"},
                {"--host", host, "images", "--format", "json"},
                {"--host", host, "ps", "-a"},
                {"--host", host, "ps", "--format", "json"},
                {"--host", host, "inspect", "nothing-here"},
                {"--host", host, "image", "inspect", "nothing-here"},
                {"--host", host, "run", "--rm", "nothing-here:1", "true"},
                {"--host", host, "logs", "nothing-here"},
                {"pull", "--bad-flag"},
            };
            for (String[] run : runs) {
                Main.run(run, new Main.Stdio(new ByteArrayInputStream(new byte[0]), new ByteArrayOutputStream(),
                        new ByteArrayOutputStream()));
            }
        }
    }
}
