package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.util.ArrayList;
import java.util.List;

/** {@code kiln volume create|ls|inspect|rm|prune}: Docker's volume commands over {@code /v1/volumes}. */
final class VolumeCommands {
    private VolumeCommands() {
    }

    /** {@code kiln volume}: the management command; its subcommands are added by {@link Commands}. */
    @Command(name = "volume", description = "Manage volumes")
    static final class Volume implements Runnable {
        @Spec
        CommandSpec spec;

        @Option(names = "--help", usageHelp = true, description = "Show this help and exit")
        boolean help;

        @Override
        public void run() {
            spec.commandLine().usage(spec.commandLine().getOut());
        }
    }

    @Command(name = "create", description = "Create a volume (a directory under kiln's root)")
    static final class Create extends Subcommand {
        @Parameters(index = "0", arity = "0..1", paramLabel = "NAME")
        String name;

        @Option(names = {"-d", "--driver"}, paramLabel = "DRIVER", description = "local (the only driver)")
        String driver = "local";

        @Option(names = "--label", paramLabel = "K=V", description = "Set metadata on the volume")
        List<String> labels = new ArrayList<>();

        @Option(names = {"-o", "--opt"}, paramLabel = "K=V", description = "Driver options (kiln's local driver "
                + "takes none)")
        List<String> options = new ArrayList<>();

        @Override
        int run(DaemonClient daemon) throws Exception {
            if (!driver.equals("local")) {
                throw KilnException.invalid("unknown volume driver \"" + driver + "\" (kiln has local)");
            }
            ObjectNode body = DaemonClient.JSON.createObjectNode();
            if (name != null) body.put("name", name);
            pairs(body.putObject("labels"), labels);
            pairs(body.putObject("options"), options);
            try (DaemonClient.Response r = daemon.call("POST", "/v1/volumes", body).ok()) {
                out().println(r.json().path("Name").asText());
            }
            return 0;
        }

        private static void pairs(ObjectNode into, List<String> values) {
            for (String v : values) {
                int eq = v.indexOf('=');
                into.put(eq < 0 ? v : v.substring(0, eq), eq < 0 ? "" : v.substring(eq + 1));
            }
        }
    }

    @Command(name = "ls", aliases = "list", description = "List volumes")
    static final class Ls extends Subcommand {
        @Option(names = {"-q", "--quiet"}, description = "Only show names")
        boolean quiet;

        @Option(names = "--format", paramLabel = "FORMAT", description = "'table' (default) or 'json'")
        String format = "table";

        @Override
        int run(DaemonClient daemon) throws Exception {
            JsonNode list;
            try (DaemonClient.Response r = daemon.call("GET", "/v1/volumes").ok()) {
                list = r.json();
            }
            if (quiet) {
                list.forEach(v -> out().println(v.path("Name").asText()));
            } else if (format.equals("json")) {
                for (JsonNode v : list) {
                    out().println(DaemonClient.JSON.writeValueAsString(v));
                }
            } else if (format.equals("table")) {
                Table t = new Table("DRIVER", "VOLUME NAME", "SIZE", "USED BY");
                list.forEach(v -> t.add("local", v.path("Name").asText(),
                        Humane.size(v.path("UsageData").path("Size").asLong()),
                        Integer.toString(v.path("UsageData").path("RefCount").asInt())));
                t.print(out());
            } else {
                throw KilnException.invalid("unknown --format \"" + format + "\" (use table or json)");
            }
            return 0;
        }
    }

    @Command(name = "inspect", description = "Show details of volumes as JSON")
    static final class Inspect extends Subcommand {
        @Parameters(arity = "1..*", paramLabel = "VOLUME")
        List<String> refs;

        @Override
        int run(DaemonClient daemon) throws Exception {
            return LifecycleCommands.inspectEach(this, daemon, refs, "/v1/volumes/");
        }
    }

    @Command(name = "rm", aliases = "remove", description = "Remove volumes no sandbox uses")
    static final class Rm extends Subcommand {
        @Parameters(arity = "1..*", paramLabel = "VOLUME")
        List<String> refs;

        @Option(names = {"-f", "--force"}, description = "Accepted for Docker compatibility (a volume in use is "
                + "never removed)")
        boolean force;

        @Override
        int run(DaemonClient daemon) {
            return LifecycleCommands.each(this, daemon, refs, "DELETE", "/v1/volumes/", "");
        }
    }

    @Command(name = "prune", description = "Remove the anonymous volumes no sandbox uses (-a: named ones too)")
    static final class Prune extends Subcommand {
        @Option(names = {"-a", "--all"}, description = "Named volumes too")
        boolean all;

        @Option(names = {"-f", "--force"}, description = "Do not ask (kiln never asks)")
        boolean force;

        @Override
        int run(DaemonClient daemon) throws Exception {
            try (DaemonClient.Response r = daemon.call("POST", "/v1/volumes/prune?all=" + all).ok()) {
                JsonNode removed = r.json().path("removed");
                long total = 0;
                if (!removed.isEmpty()) {
                    out().println("Deleted Volumes:");
                    for (var it = removed.fields(); it.hasNext(); ) {
                        var e = it.next();
                        out().println(e.getKey());
                        total += e.getValue().asLong();
                    }
                }
                out().println("Total reclaimed space: " + Humane.size(total));
            }
            return 0;
        }
    }
}
