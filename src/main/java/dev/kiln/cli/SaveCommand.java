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
import java.util.List;

/**
 * {@code kiln save [-o FILE] REF...}: a tar that both {@code docker load} and OCI tools read. The tar is written
 * next to its target and renamed, so a failed save never leaves a truncated archive under the asked name.
 */
@Command(name = "save", description = "Save images to a tar archive (docker save and OCI layout)")
final class SaveCommand extends Subcommand {

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", description = "Write to FILE instead of stdout")
    Path output;

    @Parameters(arity = "1..*", paramLabel = "REF")
    List<String> refs;

    @Override
    int run(DaemonClient daemon) throws Exception {
        StringBuilder path = new StringBuilder("/v1/images/save?");
        refs.forEach(r -> path.append("ref=").append(q(r)).append('&'));
        return download(daemon, path.toString(), output, stdio().out());
    }

    /**
     * Writes the archive at daemon {@code path} to {@code output} (next to it, then renamed: never a truncated file
     * under the asked name), or to {@code stdout} when null and not a terminal; also {@code kiln export}'s.
     */
    static int download(DaemonClient daemon, String path, Path output, OutputStream stdoutStream) throws IOException {
        if (output == null && System.console() != null) {
            throw KilnException.invalid("refusing to write an archive to a terminal (use -o FILE or redirect)");
        }
        try (DaemonClient.Response r = daemon.call("GET", path).ok()) {
            if (output == null) {
                OutputStream stdout = new BufferedOutputStream(stdoutStream, 1 << 16);
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
