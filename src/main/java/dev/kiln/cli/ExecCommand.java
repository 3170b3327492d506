package dev.kiln.cli;

import dev.kiln.api.v1.ExecRequest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.ArrayList;
import java.util.List;

/** {@code kiln exec [-d] [-i] [-t] [-e K=V] [-w DIR] [-u USER] SANDBOX CMD...}: exits with the command's code. */
@Command(name = "exec", description = "Run a command in a running sandbox")
final class ExecCommand extends Subcommand {

    @Option(names = {"-d", "--detach"})
    boolean detach;

    @Option(names = {"-i", "--interactive"})
    boolean interactive;

    @Option(names = {"-t", "--tty"})
    boolean tty;

    @Option(names = {"-e", "--env"}, paramLabel = "K=V")
    List<String> env = new ArrayList<>();

    @Option(names = {"-w", "--workdir"}, paramLabel = "DIR")
    String workdir;

    @Option(names = {"-u", "--user"}, paramLabel = "USER[:GROUP]")
    String user;

    @Parameters(index = "0", paramLabel = "SANDBOX")
    String ref;

    @Parameters(index = "1..*", arity = "1..*", paramLabel = "CMD")
    List<String> command;

    @Override
    int run(DaemonClient daemon) throws Exception {
        List<String> envs = new ArrayList<>();
        for (String e : env) {
            if (e.contains("=")) {
                envs.add(e);
            } else if (System.getenv(e) != null) {
                envs.add(e + "=" + System.getenv(e));
            }
        }
        ExecRequest req = new ExecRequest(command, envs, workdir, user, tty, interactive, detach);
        String id;
        try (DaemonClient.Response r = daemon.call("POST", "/v1/sandboxes/" + q(ref) + "/exec", req).ok()) {
            id = r.tree().path("id").asText();
        }
        String path = "/v1/execs/" + id;
        if (detach) {
            daemon.call("POST", path + "/start").ok().close();
            return 0;
        }
        DaemonClient.Response stream = daemon.call("POST", path + "/start").ok();
        return new Attach(daemon, stdio(), path, tty, interactive).run(stream, false);
    }
}
