package dev.kiln.cli;

import dev.kiln.KilnException;
import dev.kiln.api.v1.CreateRequest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.io.PrintWriter;

/** {@code kiln create [OPTIONS] IMAGE [CMD...]}: prints the new sandbox's ID. */
@Command(name = "create", description = "Create a sandbox without starting it")
final class CreateCommand extends Subcommand {

    @Mixin
    CreateOptions options;

    @Override
    int run(DaemonClient daemon) throws Exception {
        options.more.checkCidfile();
        String id = create(daemon, kiln(), options.request(), err()).path("id").asText();
        options.more.writeCidfile(id);
        out().println(id);
        return 0;
    }

    /** Docker's create: if the image is missing, say so on stderr, pull it, and try again. */
    static Json create(DaemonClient daemon, KilnCommand kiln, CreateRequest request, PrintWriter err)
            throws Exception {
        return create(daemon, kiln, request, err, "");
    }

    /** As above, with {@code query} after the create route's path ({@code ?start=1}: create and start). */
    static Json create(DaemonClient daemon, KilnCommand kiln, CreateRequest request, PrintWriter err, String query)
            throws Exception {
        try (DaemonClient.Response r = open(daemon, kiln, request, err, query)) {
            return r.tree();
        }
    }

    /** The create route's answer, a stream with {@code ?start=1&attach=1}; the caller closes it. */
    static DaemonClient.Response open(DaemonClient daemon, KilnCommand kiln, CreateRequest request, PrintWriter err,
                                      String query) throws Exception {
        try {
            return daemon.call("POST", "/v1/sandboxes" + query, request).ok();
        } catch (KilnException e) {
            if (e.kind() != KilnException.Kind.NOT_FOUND || !e.getMessage().startsWith("no such image")) {
                throw e;
            }
        }
        err.println("Unable to find image '" + request.image() + "' locally");
        err.flush();
        PullCommand.pull(daemon, kiln, request.image(), request.platform(), false, err);
        return daemon.call("POST", "/v1/sandboxes" + query, request).ok();
    }
}
