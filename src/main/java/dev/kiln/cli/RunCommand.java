package dev.kiln.cli;

import dev.kiln.KilnException;
import dev.kiln.api.v1.CreateRequest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code kiln run [-d] [--rm] [-i] [-t] … IMAGE [CMD...]}: create + start; attached, it streams the output, passes
 * stdin and signals, and exits with the sandbox's exit code (125/126/127 for kiln's own failures, as Docker).
 */
@Command(name = "run", description = "Create and start a sandbox")
final class RunCommand extends Subcommand {

    @Mixin
    CreateOptions options;

    @Option(names = {"-d", "--detach"}, description = "Run in the background and print the sandbox ID")
    boolean detach;

    @Override
    int run(DaemonClient daemon) throws Exception {
        CreateRequest request = options.request();
        if (detach && options.more.cidfile == null) {
            // one request: kilnd creates and starts (a --cidfile needs the ID even when the start fails)
            out().println(CreateCommand.create(daemon, kiln(), request, err(), "?start=1").path("id").asText());
            return 0;
        }
        if (options.more.cidfile == null) {
            // one request: kilnd creates, starts and streams, naming the sandbox in a header (api/SandboxRoutes)
            DaemonClient.Response started = CreateCommand.open(daemon, kiln(), request, err(), "?start=1&attach=1");
            String id = started.headers.get("x-kiln-sandbox");
            if (id == null) {
                started.close();
                throw new KilnException(KilnException.Kind.INTERNAL, "kilnd did not name the sandbox it started");
            }
            out().flush();
            return new Attach(daemon, stdio(), "/v1/sandboxes/" + id, request.tty(), request.openStdin())
                    .run(started, true);
        }
        options.more.checkCidfile();
        String id = CreateCommand.create(daemon, kiln(), request, err()).path("id").asText();
        options.more.writeCidfile(id);
        String path = "/v1/sandboxes/" + id;
        DaemonClient.Response started;
        try {
            started = daemon.call("POST", path + (detach ? "/start" : "/start?attach=1")).ok();
        } catch (RuntimeException e) {
            if (request.autoRemove()) {
                // as Docker: a --rm sandbox that could not start is not left behind
                daemon.call("DELETE", path + "?force=true").close();
            }
            throw e;
        }
        if (detach) {
            started.close();
            out().println(id);
            return 0;
        }
        out().flush();
        return new Attach(daemon, stdio(), path, request.tty(), request.openStdin()).run(started, true);
    }
}
