package dev.kiln.cli;

import dev.kiln.engine.Images;
import dev.kiln.image.Digest;
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
    int run(Images images) {
        ProgressView view = ProgressView.forOutput(out(), quiet, "Pushed");
        Digest d = images.push(ref, view);
        view.finish();
        if (!quiet) {
            out().println("digest: " + d);
        }
        return 0;
    }
}
