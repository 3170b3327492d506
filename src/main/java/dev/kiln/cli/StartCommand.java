package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.List;

/** {@code kiln start [-a] [-i] SANDBOX...}. */
@Command(name = "start", description = "Start one or more sandboxes")
final class StartCommand extends Subcommand {

    @Parameters(arity = "1..*", paramLabel = "SANDBOX")
    List<String> refs;

    @Option(names = {"-a", "--attach"}, description = "Attach to the output and exit with the sandbox's code")
    boolean attach;

    @Option(names = {"-i", "--interactive"}, description = "Attach stdin")
    boolean interactive;

    @Option(names = "--checkpoint", paramLabel = "NAME", description = "Restore from this checkpoint")
    String checkpoint;

    @Override
    int run(DaemonClient daemon) throws Exception {
        String from = checkpoint == null ? "" : "?checkpoint=" + q(checkpoint);
        if (attach) {
            Json s;
            try (DaemonClient.Response r = daemon.call("GET", "/v1/sandboxes/" + q(refs.getFirst())).ok()) {
                s = r.tree();
            }
            String path = "/v1/sandboxes/" + s.path("Id").asText();
            DaemonClient.Response stream = daemon.call("POST", path + "/start?attach=1"
                    + (checkpoint == null ? "" : "&checkpoint=" + q(checkpoint))).ok();
            return new Attach(daemon, stdio(), path, s.at("/Config/Tty").asBoolean(), interactive).run(stream, true);
        }
        for (String ref : refs) {
            daemon.call("POST", "/v1/sandboxes/" + q(ref) + "/start" + from).ok().close();
            out().println(ref);
        }
        return 0;
    }
}
