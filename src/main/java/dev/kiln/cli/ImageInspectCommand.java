package dev.kiln.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.kiln.KilnException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.util.List;

/** {@code kiln image inspect REF...}: a JSON array shaped like Docker's image inspect. */
@Command(name = "inspect", description = "Show details of images as JSON")
final class ImageInspectCommand extends Subcommand {

    @Parameters(arity = "1..*", paramLabel = "REF")
    List<String> refs;

    @Override
    int run(DaemonClient daemon) throws Exception {
        ArrayNode all = DaemonClient.JSON.createArrayNode();
        for (String ref : refs) {
            all.add(image(daemon, ref));
        }
        out().println(DaemonClient.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(all));
        return 0;
    }

    /** As {@link #image}, without Jackson ({@link InspectCommand} is a hot command). */
    static Json tree(DaemonClient daemon, String ref) throws Exception {
        try (DaemonClient.Response r = daemon.call("GET", "/v1/images/inspect?ref=" + q(ref)).ok()) {
            return r.tree();
        } catch (KilnException e) {
            if (e.kind() == KilnException.Kind.NOT_FOUND) {
                throw KilnException.notFound("no such image: " + ref);
            }
            throw e;
        }
    }

    static com.fasterxml.jackson.databind.JsonNode image(DaemonClient daemon, String ref) throws Exception {
        try (DaemonClient.Response r = daemon.call("GET", "/v1/images/inspect?ref=" + q(ref)).ok()) {
            return r.json();
        } catch (KilnException e) {
            if (e.kind() == KilnException.Kind.NOT_FOUND) {
                throw KilnException.notFound("no such image: " + ref);
            }
            throw e;
        }
    }
}
