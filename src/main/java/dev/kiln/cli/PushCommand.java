package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code kiln push REF}: uploads an image to the registry its name points at. */
@Command(name = "push", description = "Upload an image to a registry")
final class PushCommand extends Subcommand {

    @Parameters(paramLabel = "REF")
    String ref;

    @Option(names = {"-q", "--quiet"}, description = "Print nothing but errors")
    boolean quiet;

    @Override
    int run(DaemonClient daemon) throws Exception {
        StringBuilder path = new StringBuilder("/v1/images/push?ref=").append(q(ref));
        kiln().insecureRegistries.forEach(h -> path.append("&insecure=").append(q(h)));
        try (DaemonClient.Response r = daemon.call("POST", path.toString()).ok()) {
            Json done = new ProgressView(out(), quiet, "Pushed").render(r.body);
            if (!quiet) {
                out().println("digest: " + done.path("digest").asText());
            }
        }
        return 0;
    }
}
