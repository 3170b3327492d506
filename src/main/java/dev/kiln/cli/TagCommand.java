package dev.kiln.cli;

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
    int run(DaemonClient daemon) throws Exception {
        daemon.call("POST", "/v1/images/tag?source=" + q(source) + "&target=" + q(target)).ok().close();
        return 0;
    }
}
