package dev.kiln.cli;

import dev.kiln.engine.Images;
import dev.kiln.image.Image;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;

/** {@code kiln import FILE|- REF}: a root filesystem tarball becomes a one-layer image, as docker import. */
@Command(name = "import", description = "Create an image from a root filesystem tarball")
final class ImportCommand extends Subcommand {

    @Parameters(index = "0", paramLabel = "FILE", description = "Tarball (plain, gzip or zstd), or - for stdin")
    String file;

    @Parameters(index = "1", paramLabel = "REF")
    String ref;

    @Override
    int run(Images images) {
        Image i = images.importRootfs(file.equals("-") ? null : Path.of(file), System.in, ref);
        out().println(i.id());
        return 0;
    }
}
