package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code kiln image SUBCOMMAND}: Docker's management-command spelling. {@code ls}, {@code rm}, {@code pull} and the
 * other top-level image commands are added under it by {@link Main}.
 */
@Command(name = "image", description = "Manage images",
        subcommands = {ImageInspectCommand.class, ImageMountCommand.class, ImageUnmountCommand.class})
final class ImageCommand implements Runnable {

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }
}
