package dev.kiln.cli;

import dev.kiln.KilnException;
import dev.kiln.engine.Images;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * {@code kiln save [-o FILE] REF...}: a tar that both {@code docker load} and OCI tools read. An existing directory
 * (or a path ending in '/') as -o gets an OCI layout directory. The tar is written next to its target and renamed,
 * so a failed save never leaves a truncated archive under the asked name.
 */
@Command(name = "save", description = "Save images to a tar archive (docker save and OCI layout)")
final class SaveCommand extends Subcommand {

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", description = "Write to FILE instead of stdout")
    String output;

    @Parameters(arity = "1..*", paramLabel = "REF")
    List<String> refs;

    @Override
    int run(Images images) throws IOException {
        if (output == null) {
            if (System.console() != null) {
                throw KilnException.invalid("refusing to write an archive to a terminal (use -o FILE or redirect)");
            }
            OutputStream stdout = new BufferedOutputStream(System.out, 1 << 16);
            images.save(refs, stdout);
            stdout.flush();
            return 0;
        }
        Path target = Path.of(output);
        if (output.endsWith("/") || Files.isDirectory(target)) {
            images.saveDirectory(refs, target);
            return 0;
        }
        Path tmp = target.resolveSibling("." + target.getFileName() + ".kiln-tmp");
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 16)) {
            images.save(refs, out);
        } catch (RuntimeException | IOException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return 0;
    }
}
