package dev.kiln.cli;

import dev.kiln.engine.Images;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code kiln image unmount REF}. */
@Command(name = "unmount", aliases = "umount", description = "Unmount an image mounted with 'kiln image mount'")
final class ImageUnmountCommand extends Subcommand {

    @Parameters(paramLabel = "REF")
    String ref;

    @Override
    int run(Images images) {
        images.unmount(ref);
        return 0;
    }
}
