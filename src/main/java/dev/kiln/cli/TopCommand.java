package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code kiln top SANDBOX}: the sandbox's processes. */
@Command(name = "top", description = "Show the processes of a sandbox")
final class TopCommand extends Subcommand {

    @Parameters(paramLabel = "SANDBOX")
    String ref;

    @Override
    int run(DaemonClient daemon) throws Exception {
        try (DaemonClient.Response r = daemon.call("GET", "/v1/sandboxes/" + q(ref) + "/top").ok()) {
            out().print(r.json().path("ps").asText());
        }
        return 0;
    }
}
