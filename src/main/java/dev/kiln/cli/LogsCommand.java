package dev.kiln.cli;

import dev.kiln.api.v1.StreamFrame;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.InputStream;

/** {@code kiln logs [-f] [--tail N] [-t] SANDBOX}: from the log file the shim writes, so they outlive the daemon. */
@Command(name = "logs", description = "Show a sandbox's output")
final class LogsCommand extends Subcommand {

    @Parameters(paramLabel = "SANDBOX")
    String ref;

    @Option(names = {"-f", "--follow"}, description = "Follow until the sandbox exits")
    boolean follow;

    @Option(names = {"-n", "--tail"}, paramLabel = "N", description = "Only the last N lines (default: all)")
    String tail = "all";

    @Option(names = {"-t", "--timestamps"}, description = "Prefix each line with its time")
    boolean timestamps;

    @Option(names = "--since", paramLabel = "WHEN",
            description = "Only lines since a time: RFC 3339 (2026-11-27T10:00:00Z), epoch seconds, or relative (42s, 10m, 2h)")
    String since;

    @Option(names = "--boot", description = "vm: show the guest kernel's console (boot log) instead")
    boolean boot;

    @Override
    int run(DaemonClient daemon) throws Exception {
        String path = "/v1/sandboxes/" + q(ref) + "/logs?follow=" + follow + "&timestamps=" + timestamps + "&tail="
                + q(tail) + (since == null ? "" : "&since=" + epochSeconds(since)) + (boot ? "&boot=true" : "");
        try (DaemonClient.Response r = daemon.call("GET", path).ok()) {
            InputStream in = r.body;
            StreamFrame f;
            while ((f = StreamFrame.read(in)) != null) {
                var target = f.type() == StreamFrame.STDERR ? stdio().err() : stdio().out();
                target.write(f.payload());
                target.flush();
            }
        }
        return 0;
    }

    /** Docker's --since forms, as epoch seconds for the API. */
    static long epochSeconds(String when) {
        var relative = java.util.regex.Pattern.compile("(\\d+)([smh])").matcher(when);
        if (relative.matches()) {
            long n = Long.parseLong(relative.group(1));
            long seconds = switch (relative.group(2)) {
                case "m" -> n * 60;
                case "h" -> n * 3600;
                default -> n;
            };
            return java.time.Instant.now().getEpochSecond() - seconds;
        }
        if (when.matches("\\d+")) {
            return Long.parseLong(when);
        }
        try {
            return java.time.Instant.parse(when).getEpochSecond();
        } catch (java.time.format.DateTimeParseException e) {
            throw dev.kiln.KilnException.invalid("invalid --since \"" + when
                    + "\" (use RFC 3339, epoch seconds, or 42s/10m/2h)");
        }
    }
}
