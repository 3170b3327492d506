package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.ArrayList;
import java.util.List;

/** {@code kiln commit SANDBOX [REPOSITORY[:TAG]]}: the sandbox's changes as a new image, as docker commit. */
@Command(name = "commit", description = "Create an image from a sandbox's changes")
final class CommitCommand extends Subcommand {

    @Parameters(index = "0", paramLabel = "SANDBOX")
    String sandbox;

    @Parameters(index = "1", arity = "0..1", paramLabel = "REPOSITORY[:TAG]")
    String ref;

    @Option(names = {"-m", "--message"}, description = "Commit message")
    String message;

    @Option(names = {"-a", "--author"}, description = "Author")
    String author;

    @Option(names = {"-c", "--change"}, paramLabel = "INSTRUCTION", description = "A Dockerfile instruction to apply "
            + "to the config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)")
    List<String> changes = new ArrayList<>();

    @Override
    int run(DaemonClient daemon) throws Exception {
        StringBuilder path = new StringBuilder("/commit?container=").append(q(sandbox));
        if (ref != null) {
            int colon = ref.lastIndexOf(':');
            boolean tagged = colon > ref.lastIndexOf('/');
            path.append("&repo=").append(q(tagged ? ref.substring(0, colon) : ref));
            if (tagged) {
                path.append("&tag=").append(q(ref.substring(colon + 1)));
            }
        }
        if (message != null) {
            path.append("&comment=").append(q(message));
        }
        if (author != null) {
            path.append("&author=").append(q(author));
        }
        changes.forEach(c -> path.append("&changes=").append(q(c)));
        try (DaemonClient.Response r = daemon.call("POST", path.toString()).ok()) {
            out().println(r.json().path("Id").asText());
        }
        return 0;
    }
}
