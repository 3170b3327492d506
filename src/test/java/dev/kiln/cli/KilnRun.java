package dev.kiln.cli;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Runs the kiln CLI in this JVM against a private root, capturing what a user would see. */
record KilnRun(Path root) {

    record Result(int exitCode, String out, String err) {
        List<String> errLines() {
            return err.lines().toList();
        }
    }

    Result kiln(String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("--root", root.resolve("store").toString(), "--run-root", root.resolve("run").toString()));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(all.toArray(String[]::new), new PrintWriter(out), new PrintWriter(err));
        return new Result(code, out.toString(), err.toString());
    }

    Result ok(String... args) {
        Result r = kiln(args);
        if (r.exitCode() != 0) {
            throw new AssertionError("kiln " + String.join(" ", args) + " exited " + r.exitCode() + ": " + r.err());
        }
        return r;
    }
}
