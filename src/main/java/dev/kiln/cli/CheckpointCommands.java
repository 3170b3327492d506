package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.util.Map;

/**
 * {@code kiln checkpoint create|ls|rm}: Docker's checkpoint commands over {@code /v1/sandboxes/ID/checkpoints}
 * (docs/checkpoint.md); {@code kiln start --checkpoint NAME} restores one.
 */
final class CheckpointCommands {
    private CheckpointCommands() {
    }

    @Command(name = "checkpoint", description = "Manage checkpoints of running sandboxes (gvisor, vm)",
            subcommands = {Create.class, Ls.class, Rm.class})
    static final class Checkpoint implements Runnable {
        @Spec
        CommandSpec spec;

        @Option(names = "--help", usageHelp = true, description = "Show this help and exit")
        boolean help;

        @Override
        public void run() {
            spec.commandLine().usage(spec.commandLine().getOut());
        }
    }

    @Command(name = "create", description = "Save a running sandbox's state (it stops unless --leave-running)")
    static final class Create extends Subcommand {
        @Parameters(index = "0", paramLabel = "SANDBOX")
        String ref;

        @Parameters(index = "1", paramLabel = "CHECKPOINT")
        String name;

        @Option(names = "--leave-running", description = "Leave the sandbox running after the checkpoint")
        boolean leaveRunning;

        @Override
        int run(DaemonClient daemon) throws Exception {
            daemon.call("POST", "/v1/sandboxes/" + q(ref) + "/checkpoints",
                    Map.of("CheckpointID", name, "Exit", !leaveRunning)).ok().close();
            out().println(name);
            return 0;
        }
    }

    @Command(name = "ls", aliases = "list", description = "List a sandbox's checkpoints")
    static final class Ls extends Subcommand {
        @Parameters(index = "0", paramLabel = "SANDBOX")
        String ref;

        @Override
        int run(DaemonClient daemon) throws Exception {
            JsonNode list;
            try (DaemonClient.Response r = daemon.call("GET", "/v1/sandboxes/" + q(ref) + "/checkpoints").ok()) {
                list = r.json();
            }
            Table t = new Table("CHECKPOINT NAME");
            list.forEach(c -> t.add(c.path("Name").asText()));
            t.print(out());
            return 0;
        }
    }

    @Command(name = "rm", aliases = "remove", description = "Remove a sandbox's checkpoint")
    static final class Rm extends Subcommand {
        @Parameters(index = "0", paramLabel = "SANDBOX")
        String ref;

        @Parameters(index = "1", paramLabel = "CHECKPOINT")
        String name;

        @Override
        int run(DaemonClient daemon) throws Exception {
            daemon.call("DELETE", "/v1/sandboxes/" + q(ref) + "/checkpoints/" + q(name)).ok().close();
            return 0;
        }
    }
}
