package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.List;

/** The one-request life-cycle commands: each prints the names it was given, as Docker does. */
final class LifecycleCommands {
    private LifecycleCommands() {
    }

    @Command(name = "stop", description = "Stop sandboxes: the stop signal, then SIGKILL after a grace period")
    static final class Stop extends Subcommand {
        @Parameters(arity = "1..*", paramLabel = "SANDBOX")
        List<String> refs;

        @Option(names = {"-t", "--time"}, paramLabel = "SECS",
                description = "Seconds before SIGKILL (default: the sandbox's --stop-timeout, else 10)")
        Integer time;

        @Override
        int run(DaemonClient daemon) throws Exception {
            return each(this, daemon, refs, "POST", "/stop" + (time == null ? "" : "?t=" + time));
        }
    }

    @Command(name = "kill", description = "Send a signal to sandboxes (default KILL)")
    static final class Kill extends Subcommand {
        @Parameters(arity = "1..*", paramLabel = "SANDBOX")
        List<String> refs;

        @Option(names = {"-s", "--signal"}, paramLabel = "SIG")
        String signal = "KILL";

        @Override
        int run(DaemonClient daemon) throws Exception {
            return each(this, daemon, refs, "POST", "/kill?signal=" + q(signal));
        }
    }

    @Command(name = "restart", description = "Restart sandboxes")
    static final class Restart extends Subcommand {
        @Parameters(arity = "1..*", paramLabel = "SANDBOX")
        List<String> refs;

        @Option(names = {"-t", "--time"}, paramLabel = "SECS")
        int time = 10;

        @Override
        int run(DaemonClient daemon) throws Exception {
            return each(this, daemon, refs, "POST", "/restart?t=" + time);
        }
    }

    @Command(name = "rm", description = "Remove sandboxes")
    static final class Remove extends Subcommand {
        @Parameters(arity = "1..*", paramLabel = "SANDBOX")
        List<String> refs;

        @Option(names = {"-f", "--force"}, description = "Kill a running sandbox first")
        boolean force;

        @Option(names = {"-v", "--volumes"}, description = "Remove its anonymous volumes too")
        boolean volumes;

        @Override
        int run(DaemonClient daemon) throws Exception {
            return each(this, daemon, refs, "DELETE", "?force=" + force + "&v=" + volumes);
        }
    }

    @Command(name = "rename", description = "Rename a sandbox")
    static final class Rename extends Subcommand {
        @Parameters(index = "0", paramLabel = "SANDBOX")
        String ref;

        @Parameters(index = "1", paramLabel = "NEW_NAME")
        String name;

        @Override
        int run(DaemonClient daemon) throws Exception {
            daemon.call("POST", "/v1/sandboxes/" + q(ref) + "/rename?name=" + q(name)).ok().close();
            return 0;
        }
    }

    @Command(name = "wait", description = "Wait for sandboxes to stop and print their exit codes")
    static final class Wait extends Subcommand {
        @Parameters(arity = "1..*", paramLabel = "SANDBOX")
        List<String> refs;

        @Override
        int run(DaemonClient daemon) throws Exception {
            for (String ref : refs) {
                try (DaemonClient.Response r = daemon.call("POST", "/v1/sandboxes/" + q(ref) + "/wait").ok()) {
                    out().println(r.tree().path("exitCode").asInt());
                }
            }
            return 0;
        }
    }

    @Command(name = "prune", description = "Remove all stopped sandboxes")
    static final class Prune extends Subcommand {
        @Option(names = {"-f", "--force"}, description = "Do not ask (kiln never asks)")
        boolean force;

        @Override
        int run(DaemonClient daemon) throws Exception {
            try (DaemonClient.Response r = daemon.call("POST", "/v1/sandboxes/prune").ok()) {
                var removed = r.json().path("removed");
                out().println("Deleted Sandboxes:");
                removed.forEach(id -> out().println(id.asText()));
            }
            return 0;
        }
    }

    /** Runs one request per sandbox; errors are reported per sandbox and make the exit code 1, as Docker. */
    private static int each(Subcommand c, DaemonClient daemon, List<String> refs, String method, String suffix) {
        return each(c, daemon, refs, method, "/v1/sandboxes/", suffix);
    }

    /**
     * One request per object under {@code collection}, printing each name that succeeded; errors are reported per
     * object and make the exit code 1 (125 when there was only one), as Docker.
     */
    static int each(Subcommand c, DaemonClient daemon, List<String> refs, String method, String collection,
                    String suffix) {
        int code = 0;
        for (String ref : refs) {
            String path = collection + Subcommand.q(ref) + suffix;
            try {
                daemon.call(method, path).ok().close();
                c.out().println(ref);
            } catch (Exception e) {
                c.err().println("kiln: " + e.getMessage());
                code = refs.size() == 1 ? Main.EXIT_KILN_FAILED : 1;
            }
        }
        return code;
    }

    /** {@code kiln network|volume inspect REF...}: one GET per object under {@code collection}, printed as one array. */
    static int inspectEach(Subcommand c, DaemonClient daemon, List<String> refs, String collection) throws Exception {
        com.fasterxml.jackson.databind.node.ArrayNode all = DaemonClient.JSON.createArrayNode();
        for (String ref : refs) {
            try (DaemonClient.Response r = daemon.call("GET", collection + Subcommand.q(ref)).ok()) {
                all.add(r.json());
            }
        }
        c.out().println(DaemonClient.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(all));
        return 0;
    }
}
