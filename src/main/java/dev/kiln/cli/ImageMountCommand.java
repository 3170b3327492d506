package dev.kiln.cli;

import dev.kiln.engine.Images;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code kiln image mount REF}: prints the path of the image's root filesystem, mounted read-only. */
@Command(name = "mount", description = "Mount an image's root filesystem read-only and print its path")
final class ImageMountCommand extends Subcommand {

    @Parameters(paramLabel = "REF")
    String ref;

    @Override
    int run(Images images) {
        out().println(images.mount(ref));
        return 0;
    }
}
