package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;

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
        return SaveCommand.download(daemon, "/v1/sandboxes/" + q(ref) + "/export", output, stdio().out());
    }
}
