package dev.kiln.cli;

import dev.kiln.KilnException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;

/** {@code kiln pull [--platform os/arch] [-q] REF}. */
@Command(name = "pull", description = "Download an image from a registry")
final class PullCommand extends Subcommand {

    @Parameters(paramLabel = "REF", description = "Image reference, e.g. busybox or 127.0.0.1:5000/app:1")
    String ref;

    @Option(names = "--platform", paramLabel = "OS/ARCH", description = "Platform to pull (default: this host's)")
    String platform;

    @Option(names = {"-q", "--quiet"}, description = "Print only the image name")
    boolean quiet;

    @Override
    int run(DaemonClient daemon) throws Exception {
        Json done = pull(daemon, kiln(), ref, platform, quiet, out());
        if (!quiet) {
            out().println("Digest: " + done.path("digest").asText());
            out().println("Status: Image is up to date for " + ref);
        }
        out().println(done.path("image").asText());
        return 0;
    }

    /** Shared with {@code run}, which pulls a missing image first. */
    static Json pull(DaemonClient daemon, KilnCommand kiln, String ref, String platform, boolean quiet,
                         PrintWriter progressOut) throws Exception {
        if (platform != null && platform.split("/").length < 2) {
            throw KilnException.invalid("invalid platform \"" + platform + "\" (expected os/arch[/variant], e.g. linux/amd64)");
        }
        StringBuilder path = new StringBuilder("/v1/images/pull?ref=").append(q(ref));
        if (platform != null) {
            path.append("&platform=").append(q(platform));
        }
        kiln.insecureRegistries.forEach(h -> path.append("&insecure=").append(q(h)));
        try (DaemonClient.Response r = daemon.call("POST", path.toString()).ok()) {
            return new ProgressView(progressOut, quiet, "Pull complete").render(r.body);
        }
    }
}
