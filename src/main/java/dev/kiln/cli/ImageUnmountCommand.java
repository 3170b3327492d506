package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code kiln image unmount REF}. */
@Command(name = "unmount", aliases = "umount", description = "Unmount an image mounted with 'kiln image mount'")
final class ImageUnmountCommand extends Subcommand {

    @Parameters(paramLabel = "REF")
    String ref;

    @Override
    int run(DaemonClient daemon) throws Exception {
        daemon.call("POST", "/v1/images/unmount?ref=" + q(ref)).ok().close();
        return 0;
    }
}
