package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import dev.kiln.api.v1.AuditRequest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code kiln audit [--isolation container|gvisor|vm|all] [--json] [-o FILE] IMAGE [CMD...]}: the host attack surface
 * behind each isolation, measured on a run of the workload (docs/security.md).
 */
@Command(name = "audit", description = "Measure the host attack surface of each isolation running IMAGE")
final class AuditCommand extends Subcommand {

    @Option(names = "--isolation", paramLabel = "KIND", defaultValue = "all",
            description = "container, gvisor, vm or all (every one installed here; default)")
    String isolation;

    @Option(names = "--json", description = "Print the whole report as JSON (with syscall names and counts)")
    boolean json;

    @Option(names = "--window", paramLabel = "SECONDS", defaultValue = "30",
            description = "Count syscalls for at most this long per isolation (default: ${DEFAULT-VALUE})")
    int windowSeconds;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE",
            description = "Also write the report to FILE and a bar chart (log scale) to FILE's name with .png")
    Path output;

    @Parameters(index = "0", paramLabel = "IMAGE")
    String image;

    @Parameters(index = "1..*", paramLabel = "CMD", description = "Command to run (default: the image's)")
    List<String> cmd = new ArrayList<>();

    @Override
    int run(DaemonClient daemon) throws Exception {
        if (windowSeconds < 1) {
            throw KilnException.invalid("--window must be at least 1 second");
        }
        JsonNode report;
        try (DaemonClient.Response r = daemon.call("POST", "/v1/audit", new AuditRequest(image,
                cmd.isEmpty() ? null : cmd, isolation, windowSeconds)).ok()) {
            report = r.json();
        }
        String text = json ? DaemonClient.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(report) + "\n"
                : table(report);
        out().print(text);
        out().flush();
        if (output != null) {
            Files.writeString(output, text, StandardCharsets.UTF_8);
            Path chart = AuditChart.beside(output);
            try {
                AuditChart.draw(report, chart);
                err().println("kiln audit: report " + output + ", chart " + chart);
            } catch (IOException e) {
                err().println("kiln audit: report " + output + "; no chart: " + e.getMessage());
            }
        }
        for (JsonNode row : report.path("rows")) {
            if (row.hasNonNull("error")) {
                return 1; // the report is out, but one isolation could not be measured
            }
        }
        return 0;
    }

    static String table(JsonNode report) {
        StringWriter buf = new StringWriter();
        PrintWriter out = new PrintWriter(buf);
        out.println("kiln audit of " + report.path("image").asText() + " on Linux " + report.path("kernel").asText()
                + " (" + report.path("table").asText() + ")");
        Table t = new Table("ISOLATION", "SOURCE", "PROCESS", "ALLOWED", "ARG-CHECKED", "DENIED", "USED", "UID",
                "CAPS", "NNP", "SECCOMP", "OWN NAMESPACES", "ROOT", "DEVICES", "LIMITS (MEM/PIDS)");
        List<String> notes = new ArrayList<>();
        for (JsonNode row : report.path("rows")) {
            String name = row.path("isolation").asText();
            if (row.hasNonNull("error")) {
                t.add(name, "measured", "error", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-");
                notes.add(name + ": " + row.path("error").asText());
                continue;
            }
            boolean measured = row.path("source").asText().equals("measured");
            JsonNode p = row.path("privileges");
            t.add(name, measured ? "measured" : "published", measured ? row.path("process").asText()
                            + " " + row.path("pid").asText() : "-", number(row, "allowed"),
                    number(row, "argumentChecked"), number(row, "denied"), number(row, "used"),
                    measured ? p.path("uid").path(1).asText() : "-", measured ? caps(p) : "-",
                    measured ? (p.path("noNewPrivs").asBoolean() ? "1" : "0") : "-",
                    measured ? seccomp(p) : "-", measured ? joined(p.path("ownNamespaces"), "none") : "-",
                    measured ? (p.path("hostRoot").asBoolean() ? "host" : "own " + p.path("root").asText()) : "-",
                    measured ? devices(p) : "-", measured ? p.path("cgroupLimits").path("memory").asText() + "/"
                            + p.path("cgroupLimits").path("pids").asText() : "-");
            String note = row.path("note").asText("");
            if (measured) {
                note = row.path("filter").asText() + "; " + note;
            }
            if (!note.isEmpty()) {
                notes.add(name + ": " + note);
            }
        }
        t.print(out);
        out.println();
        out.println("ALLOWED: syscalls the seccomp filters let through whatever the arguments; ARG-CHECKED: only for "
                + "some arguments; DENIED: the rest of the " + report.path("syscalls").asText() + ". USED: distinct "
                + "syscalls made while traced. Namespaces compared with "
                + report.findPath("namespacesComparedWith").asText("the host's") + ".");
        notes.forEach(out::println);
        out.flush();
        return buf.toString();
    }

    private static String number(JsonNode row, String field) {
        return row.hasNonNull(field) ? row.get(field).asText() : "-";
    }

    private static String caps(JsonNode p) {
        if (p.path("allCapabilities").asBoolean()) {
            return "all";
        }
        int n = p.path("capabilities").size();
        return n == 0 ? "none" : n + " (" + p.path("capEff").asText() + ")";
    }

    private static String seccomp(JsonNode p) {
        return switch (p.path("seccomp").asInt()) {
            case 0 -> "none";
            case 1 -> "strict";
            default -> "filter x" + p.path("seccompFilters").asInt();
        };
    }

    private static String devices(JsonNode p) {
        List<String> parts = new ArrayList<>();
        p.path("devicesVisible").forEach(d -> parts.add(d.asText().replace("/dev/", "").replace("net/", "")));
        p.path("deviceFds").forEach(d -> parts.add("fd:" + d.asText().replace("/dev/", "").replace("net/", "")));
        return parts.isEmpty() ? "none" : String.join(",", parts);
    }

    private static String joined(JsonNode array, String empty) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out.isEmpty() ? empty : String.join(",", out);
    }
}
