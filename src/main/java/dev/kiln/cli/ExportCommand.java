package dev.kiln.cli;

import dev.kiln.KilnException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * {@code kiln export [-o FILE] SANDBOX}: the sandbox's root filesystem as a tar ({@code docker export}), written next
 * to its target and renamed, so a failed export never leaves a truncated archive under the asked name.
 */
@Command(name = "export", description = "Export a sandbox's root filesystem as a tar archive")
final class ExportCommand extends Subcommand {

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", description = "Write to FILE instead of stdout")
    Path output;

    @Parameters(index = "0", paramLabel = "SANDBOX")
    String ref;

    @Override
    int run(DaemonClient daemon) throws Exception {
        if (output == null && System.console() != null) {
            throw KilnException.invalid("refusing to write an archive to a terminal (use -o FILE or redirect)");
        }
        try (DaemonClient.Response r = daemon.call("GET", "/v1/sandboxes/" + q(ref) + "/export").ok()) {
            if (output == null) {
                OutputStream stdout = new BufferedOutputStream(stdio().out(), 1 << 16);
                r.body.transferTo(stdout);
                stdout.flush();
                return 0;
            }
            Path tmp = output.toAbsolutePath().resolveSibling("." + output.getFileName() + ".kiln-tmp");
            try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 16)) {
                r.body.transferTo(out);
            } catch (IOException | RuntimeException e) {
                Files.deleteIfExists(tmp);
                throw e;
            }
            Files.move(tmp, output, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        return 0;
    }
}
