package dev.kiln.cli;

import dev.kiln.KilnException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** {@code kiln import FILE|- REF}: a root filesystem tarball becomes a one-layer image, as docker import. */
@Command(name = "import", description = "Create an image from a root filesystem tarball")
final class ImportCommand extends Subcommand {

    @Parameters(index = "0", paramLabel = "FILE", description = "Tarball (plain, gzip or zstd), or - for stdin")
    String file;

    @Parameters(index = "1", paramLabel = "REF")
    String ref;

    @Override
    int run(DaemonClient daemon) throws Exception {
        try (InputStream in = file.equals("-") ? stdio().in() : Files.newInputStream(Path.of(file));
             DaemonClient.Response r = daemon.stream("POST", "/v1/images/import?ref=" + q(ref),
                     "application/x-tar", in).ok()) {
            out().println(r.json().path("id").asText());
        } catch (NoSuchFileException e) {
            throw KilnException.notFound("file " + file + " does not exist");
        }
        return 0;
    }
}
