package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.List;

/** {@code kiln rmi [-f] REF...}: untags, and deletes an image with its last name. */
@Command(name = "rmi", description = "Remove one or more images")
final class RmiCommand extends Subcommand {

    @Parameters(arity = "1..*", paramLabel = "REF")
    List<String> refs;

    @Option(names = {"-f", "--force"}, description = "Remove even if in use or named several times")
    boolean force;

    @Override
    int run(DaemonClient daemon) throws Exception {
        for (String ref : refs) {
            try (DaemonClient.Response r = daemon.call("DELETE", "/v1/images?ref=" + q(ref) + "&force=" + force).ok()) {
                for (JsonNode line : r.json()) {
                    out().println(line.asText());
                }
            }
        }
        return 0;
    }
}
