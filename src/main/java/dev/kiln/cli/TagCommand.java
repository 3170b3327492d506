package dev.kiln.cli;

import dev.kiln.engine.Images;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code kiln tag SOURCE TARGET}. */
@Command(name = "tag", description = "Give an image another name")
final class TagCommand extends Subcommand {

    @Parameters(index = "0", paramLabel = "SOURCE")
    String source;

    @Parameters(index = "1", paramLabel = "TARGET")
    String target;

    @Override
    int run(Images images) {
        images.tag(source, target);
        return 0;
    }
}
