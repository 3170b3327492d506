package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code kiln image mount REF}: prints the path of the image's root filesystem, mounted read-only. */
@Command(name = "mount", description = "Mount an image's root filesystem read-only and print its path")
final class ImageMountCommand extends Subcommand {

    @Parameters(paramLabel = "REF")
    String ref;

    @Override
    int run(DaemonClient daemon) throws Exception {
        try (DaemonClient.Response r = daemon.call("POST", "/v1/images/mount?ref=" + q(ref)).ok()) {
            out().println(r.tree().path("path").asText());
        }
        return 0;
    }
}
