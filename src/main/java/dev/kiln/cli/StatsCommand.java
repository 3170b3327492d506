package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.ArrayList;
import java.util.List;

/** {@code kiln stats --no-stream [SANDBOX...]}: one sample per running sandbox. */
@Command(name = "stats", description = "Show resource use of sandboxes")
final class StatsCommand extends Subcommand {

    @Parameters(arity = "0..*", paramLabel = "SANDBOX")
    List<String> refs = new ArrayList<>();

    @Option(names = "--no-stream", description = "One sample, then exit (kiln does only this for now)")
    boolean noStream;

    @Override
    int run(DaemonClient daemon) throws Exception {
        if (!noStream) {
            throw KilnException.invalid("streaming stats are not supported yet: use --no-stream");
        }
        List<String> targets = new ArrayList<>(refs);
        if (targets.isEmpty()) {
            try (DaemonClient.Response r = daemon.call("GET", "/v1/sandboxes").ok()) {
                for (JsonNode s : r.json()) {
                    if (s.path("State").asText().equals("running")) {
                        targets.add(s.path("ID").asText());
                    }
                }
            }
        }
        Table t = new Table("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS");
        for (String ref : targets) {
            try (DaemonClient.Response r = daemon.call("GET", "/v1/sandboxes/" + q(ref) + "/stats").ok()) {
                JsonNode s = r.json();
                long mem = s.path("memoryBytes").asLong();
                long limit = s.path("memoryLimitBytes").asLong();
                t.add(s.path("id").asText().substring(0, 12), s.path("name").asText(),
                        String.format("%.2f%%", s.path("cpuPercent").asDouble()),
                        Humane.binarySize(mem) + " / " + (limit > 0 ? Humane.binarySize(limit) : "unlimited"),
                        limit > 0 ? String.format("%.2f%%", 100.0 * mem / limit) : "--", s.path("pids").asLong());
            }
        }
        t.print(out());
        return 0;
    }
}
