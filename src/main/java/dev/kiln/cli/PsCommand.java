package dev.kiln.cli;

import dev.kiln.KilnException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.List;

/** {@code kiln ps [-a] [-q] [--filter K=V] [--format json]}: Docker's columns, plus the isolation. */
@Command(name = "ps", description = "List sandboxes")
final class PsCommand extends Subcommand {

    @Option(names = {"-a", "--all"}, description = "Show all sandboxes (default: running only)")
    boolean all;

    @Option(names = {"-q", "--quiet"}, description = "Only show IDs")
    boolean quiet;

    @Option(names = {"-f", "--filter"}, paramLabel = "K=V",
            description = "id, name, label (K or K=V), status, ancestor, isolation")
    List<String> filters = new ArrayList<>();

    @Option(names = "--format", paramLabel = "FORMAT", description = "'table' (default) or 'json'")
    String format = "table";

    @Option(names = "--no-trunc", description = "Do not shorten IDs and commands")
    boolean noTrunc;

    @Override
    int run(DaemonClient daemon) throws Exception {
        Json list;
        try (DaemonClient.Response r = daemon.call("GET", "/v1/sandboxes").ok()) {
            list = r.tree();
        }
        List<Json> rows = new ArrayList<>();
        for (Json s : list) {
            String state = s.path("State").asText();
            if ((all || state.equals("running") || state.equals("paused")) && matches(s)) {
                rows.add(s);
            }
        }
        if (quiet) {
            rows.forEach(s -> out().println(id(s)));
        } else if (format.equals("json")) {
            for (Json s : rows) {
                out().println(s);
            }
        } else if (format.equals("table")) {
            Table t = new Table("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "ISOLATION",
                    "NAMES");
            for (Json s : rows) {
                String cmd = s.path("Command").asText();
                if (!noTrunc && cmd.length() > 20) {
                    cmd = cmd.substring(0, 19) + "…";
                }
                t.add(id(s), s.path("Image").asText(), "\"" + cmd + "\"",
                        Humane.since(java.time.Instant.ofEpochSecond(s.path("Created").asLong()).toString()),
                        s.path("Status").asText(), ports(s), s.path("Isolation").asText(),
                        s.path("Names").path(0).asText());
            }
            t.print(out());
        } else {
            throw KilnException.invalid("unknown --format \"" + format + "\" (use table or json)");
        }
        return 0;
    }

    /** Docker's PORTS column: {@code 0.0.0.0:8080->80/tcp, ...}. */
    private static String ports(Json s) {
        List<String> out = new ArrayList<>();
        for (Json p : s.path("Ports")) {
            out.add(p.path("IP").asText("0.0.0.0") + ":" + p.path("PublicPort").asInt() + "->"
                    + p.path("PrivatePort").asInt() + "/" + p.path("Type").asText("tcp"));
        }
        return String.join(", ", out);
    }

    private String id(Json s) {
        String id = s.path("ID").asText();
        return noTrunc ? id : id.substring(0, 12);
    }

    private boolean matches(Json s) {
        for (String f : filters) {
            int eq = f.indexOf('=');
            if (eq < 0) {
                throw KilnException.invalid("bad filter \"" + f + "\" (expected KEY=VALUE)");
            }
            String key = f.substring(0, eq);
            String value = f.substring(eq + 1);
            boolean ok = switch (key) {
                case "id" -> s.path("ID").asText().startsWith(value);
                case "name" -> s.path("Names").path(0).asText().contains(value);
                case "status" -> s.path("State").asText().equals(value);
                case "ancestor" -> s.path("Image").asText().equals(value) || s.path("ImageID").asText().contains(value);
                case "isolation" -> s.path("Isolation").asText().equals(value);
                case "label" -> {
                    int e2 = value.indexOf('=');
                    Json labels = s.path("Labels");
                    yield e2 < 0 ? labels.has(value)
                            : labels.path(value.substring(0, e2)).asText("\u0000").equals(value.substring(e2 + 1));
                }
                default -> throw KilnException.invalid("unknown filter \"" + key
                        + "\" (kiln filters: id, name, label, status, ancestor, isolation)");
            };
            if (!ok) {
                return false;
            }
        }
        return true;
    }
}
