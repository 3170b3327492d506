package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import dev.kiln.api.v1.NetworkCreateRequest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@code kiln network create|ls|inspect|rm|prune}: Docker's network commands over {@code /v1/networks}. */
final class NetworkCommands {
    private NetworkCommands() {
    }

    /** {@code kiln network}: the management command; its subcommands are added by {@link Commands}. */
    @Command(name = "network", description = "Manage networks")
    static final class Network implements Runnable {
        @Spec
        CommandSpec spec;

        @Option(names = "--help", usageHelp = true, description = "Show this help and exit")
        boolean help;

        @Override
        public void run() {
            spec.commandLine().usage(spec.commandLine().getOut());
        }
    }

    @Command(name = "create", description = "Create a bridge network whose sandboxes find each other by name")
    static final class Create extends Subcommand {
        @Parameters(index = "0", paramLabel = "NAME")
        String name;

        @Option(names = "--subnet", paramLabel = "CIDR", description = "IPv4 subnet (default: a free one)")
        String subnet;

        @Option(names = "--gateway", paramLabel = "IP", description = "The bridge's address (default: the first)")
        String gateway;

        @Option(names = {"-d", "--driver"}, paramLabel = "DRIVER", description = "bridge (the only driver)")
        String driver = "bridge";

        @Option(names = "--label", paramLabel = "K=V", description = "Set metadata on the network")
        List<String> labels = new ArrayList<>();

        @Option(names = "--internal", description = "No traffic past the bridge (sandboxes reach only each other)")
        boolean internal;

        @Option(names = "--ip-range", paramLabel = "CIDR", description = "Hand out addresses from this part of the subnet")
        String ipRange;

        @Override
        int run(DaemonClient daemon) throws Exception {
            if (!driver.equals("bridge")) {
                throw KilnException.invalid("unknown network driver \"" + driver + "\" (kiln has bridge)");
            }
            Map<String, String> l = new LinkedHashMap<>();
            for (String label : labels) {
                int eq = label.indexOf('=');
                l.put(eq < 0 ? label : label.substring(0, eq), eq < 0 ? "" : label.substring(eq + 1));
            }
            try (DaemonClient.Response r = daemon.call("POST", "/v1/networks",
                    new NetworkCreateRequest(name, subnet, gateway, l, internal, ipRange)).ok()) {
                out().println(r.json().path("id").asText());
            }
            return 0;
        }
    }

    @Command(name = "ls", aliases = "list", description = "List networks")
    static final class Ls extends Subcommand {
        @Option(names = {"-q", "--quiet"}, description = "Only show IDs")
        boolean quiet;

        @Option(names = "--format", paramLabel = "FORMAT", description = "'table' (default) or 'json'")
        String format = "table";

        @Option(names = "--no-trunc", description = "Do not shorten IDs")
        boolean noTrunc;

        @Override
        int run(DaemonClient daemon) throws Exception {
            JsonNode list;
            try (DaemonClient.Response r = daemon.call("GET", "/v1/networks").ok()) {
                list = r.json();
            }
            if (quiet) {
                list.forEach(n -> out().println(id(n)));
            } else if (format.equals("json")) {
                for (JsonNode n : list) {
                    out().println(DaemonClient.JSON.writeValueAsString(n));
                }
            } else if (format.equals("table")) {
                Table t = new Table("NETWORK ID", "NAME", "DRIVER", "SCOPE");
                list.forEach(n -> t.add(id(n), n.path("Name").asText(), n.path("Driver").asText(),
                        n.path("Scope").asText()));
                t.print(out());
            } else {
                throw KilnException.invalid("unknown --format \"" + format + "\" (use table or json)");
            }
            return 0;
        }

        private String id(JsonNode n) {
            String id = n.path("Id").asText();
            return noTrunc ? id : id.substring(0, 12);
        }
    }

    @Command(name = "inspect", description = "Show details of networks as JSON")
    static final class Inspect extends Subcommand {
        @Parameters(arity = "1..*", paramLabel = "NETWORK")
        List<String> refs;

        @Override
        int run(DaemonClient daemon) throws Exception {
            return LifecycleCommands.inspectEach(this, daemon, refs, "/v1/networks/");
        }
    }

    @Command(name = "rm", aliases = "remove", description = "Remove networks no sandbox uses")
    static final class Rm extends Subcommand {
        @Parameters(arity = "1..*", paramLabel = "NETWORK")
        List<String> refs;

        @Override
        int run(DaemonClient daemon) {
            return LifecycleCommands.each(this, daemon, refs, "DELETE", "/v1/networks/", "");
        }
    }

    @Command(name = "prune", description = "Remove the user networks no sandbox uses")
    static final class Prune extends Subcommand {
        @Option(names = {"-f", "--force"}, description = "Do not ask (kiln never asks)")
        boolean force;

        @Override
        int run(DaemonClient daemon) throws Exception {
            try (DaemonClient.Response r = daemon.call("POST", "/v1/networks/prune").ok()) {
                JsonNode removed = r.json().path("removed");
                if (!removed.isEmpty()) {
                    out().println("Deleted Networks:");
                    removed.forEach(n -> out().println(n.asText()));
                }
            }
            return 0;
        }
    }
}
