package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code kiln image SUBCOMMAND}: Docker's management-command spelling. {@code ls}, {@code rm}, {@code pull} and the
 * image commands are added under it by {@link Commands}.
 */
@Command(name = "image", description = "Manage images")
final class ImageCommand implements Runnable {

    @Spec
    CommandSpec spec;

    @picocli.CommandLine.Option(names = "--help", usageHelp = true, description = "Show this help and exit")
    boolean help;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }
}
