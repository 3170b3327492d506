package dev.kiln.cli;

import dev.kiln.engine.Images;
import dev.kiln.image.Image;
import dev.kiln.image.Platform;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

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
    int run(Images images) {
        Platform p = platform == null ? Platform.host() : Platform.parse(platform);
        ProgressView view = ProgressView.forOutput(out(), quiet, "Pull complete");
        Image image = images.pull(ref, p, view);
        view.finish();
        if (!quiet) {
            out().println("Digest: " + (image.repoDigest() != null ? image.repoDigest() : image.manifestDigest()));
            out().println("Status: Image is up to date for " + image.ref().familiar());
        }
        out().println(image.name());
        return 0;
    }
}
