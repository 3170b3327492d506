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

    @Override
    int run(DaemonClient daemon) throws Exception {
        String path = "/v1/sandboxes/" + q(ref) + "/logs?follow=" + follow + "&timestamps=" + timestamps + "&tail="
                + q(tail);
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
}
