package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import picocli.CommandLine.Command;

/** {@code kiln kernels}: the guest kernels the vm isolation can boot on kilnd's host; {@code *} marks the default. */
@Command(name = "kernels", description = "List the kernels the vm isolation can boot")
final class KernelsCommand extends Subcommand {

    @Override
    int run(DaemonClient daemon) throws Exception {
        Table t = new Table("DEFAULT", "VERSION", "MODULES", "PATH");
        try (DaemonClient.Response r = daemon.call("GET", "/v1/kernels").ok()) {
            for (JsonNode k : r.json()) {
                JsonNode modules = k.path("modulesDir");
                t.add(k.path("isDefault").asBoolean() ? "*" : "", k.path("version").asText(),
                        modules.isNull() || modules.isMissingNode() ? "(none: built-in drivers only)" : modules.asText(),
                        k.path("image").asText());
            }
        }
        t.print(out());
        return 0;
    }
}
