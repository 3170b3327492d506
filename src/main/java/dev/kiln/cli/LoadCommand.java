package dev.kiln.cli;

import dev.kiln.engine.Images;
import dev.kiln.image.Image;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** {@code kiln load [-i FILE]}: docker save archives and OCI layouts (tar or directory); stdin without -i. */
@Command(name = "load", description = "Load images from a docker save archive or an OCI layout")
final class LoadCommand extends Subcommand {

    @Option(names = {"-i", "--input"}, paramLabel = "FILE", description = "Archive or OCI layout directory (default: stdin)")
    Path input;

    @Option(names = {"-q", "--quiet"}, description = "Print nothing but errors")
    boolean quiet;

    @Override
    int run(Images images) {
        for (Image i : images.load(input, System.in)) {
            if (!quiet) {
                out().println("Loaded image: " + i.ref().familiar());
            }
        }
        return 0;
    }
}
