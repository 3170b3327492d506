package dev.kiln.cli;

import java.io.PrintWriter;
import java.io.StringWriter;

/**
 * The training run behind the AOT cache (scripts/aot-cache): runs the CLI's common read paths in one JVM against a
 * throw-away root, so the classes they load go into the cache. Not part of kiln's user interface.
 */
public final class AotTraining {
    private AotTraining() {
    }

    public static void main(String[] args) {
        String root = args[0];
        String[][] runs = {
            {"--version"},
            {"--help"},
            {"images", "--root", root + "/root", "--run-root", root + "/run"},
            {"images", "--format", "json", "--root", root + "/root", "--run-root", root + "/run"},
            {"image", "inspect", "nothing-here", "--root", root + "/root", "--run-root", root + "/run"},
            {"pull", "--bad-flag"},
        };
        for (String[] run : runs) {
            Main.run(run, new PrintWriter(new StringWriter()), new PrintWriter(new StringWriter()));
        }
    }
}
