package dev.kiln.cli;

import dev.kiln.KilnException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.ArrayList;
import java.util.List;

/** {@code kiln inspect [--type sandbox|image] NAME...}: sandboxes first, then images, as Docker. */
@Command(name = "inspect", description = "Show details of sandboxes or images as JSON")
final class InspectCommand extends Subcommand {

    @Parameters(arity = "1..*", paramLabel = "NAME")
    List<String> refs;

    @Option(names = "--type", paramLabel = "TYPE", description = "sandbox (or container) or image")
    String type;

    @Override
    int run(DaemonClient daemon) throws Exception {
        List<Object> all = new ArrayList<>();
        for (String ref : refs) {
            // sandbox names and IDs never hold '/', ':' or '@'; image references often do
            boolean sandbox = (type == null && ref.matches("[a-zA-Z0-9][a-zA-Z0-9_.-]*"))
                    || "sandbox".equals(type) || "container".equals(type);
            if (sandbox) {
                try (DaemonClient.Response r = daemon.call("GET", "/v1/sandboxes/" + q(ref)).ok()) {
                    all.add(r.tree().value());
                    continue;
                } catch (KilnException e) {
                    if (e.kind() != KilnException.Kind.NOT_FOUND || type != null) {
                        throw e;
                    }
                }
            }
            try {
                all.add(ImageInspectCommand.tree(daemon, ref).value());
            } catch (KilnException e) {
                throw e.kind() == KilnException.Kind.NOT_FOUND ? KilnException.notFound("no such object: " + ref) : e;
            }
        }
        out().println(new Json(all).pretty());
        return 0;
    }
}
