package dev.kiln.cli;

import dev.kiln.engine.Images;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.List;

/** {@code kiln rmi [-f] REF...}: untags, and deletes an image with its last name. */
@Command(name = "rmi", description = "Remove one or more images")
final class RmiCommand extends Subcommand {

    @Parameters(arity = "1..*", paramLabel = "REF")
    List<String> refs;

    @Option(names = {"-f", "--force"}, description = "Remove even if in use or named several times")
    boolean force;

    @Override
    int run(Images images) {
        for (String ref : refs) {
            images.remove(ref, force).forEach(out()::println);
        }
        return 0;
    }
}
