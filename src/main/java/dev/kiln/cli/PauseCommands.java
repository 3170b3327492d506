package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.util.List;

/** {@code kiln pause} and {@code kiln unpause}: every process of a sandbox frozen, then thawed (a VM's vCPUs). */
final class PauseCommands {
    private PauseCommands() {
    }

    @Command(name = "pause", description = "Freeze every process of sandboxes (a VM: its vCPUs)")
    static final class Pause extends Subcommand {
        @Parameters(arity = "1..*", paramLabel = "SANDBOX")
        List<String> refs;

        @Override
        int run(DaemonClient daemon) throws Exception {
            return LifecycleCommands.each(this, daemon, refs, "POST", "/v1/sandboxes/", "/pause");
        }
    }

    @Command(name = "unpause", description = "Thaw paused sandboxes")
    static final class Unpause extends Subcommand {
        @Parameters(arity = "1..*", paramLabel = "SANDBOX")
        List<String> refs;

        @Override
        int run(DaemonClient daemon) throws Exception {
            return LifecycleCommands.each(this, daemon, refs, "POST", "/v1/sandboxes/", "/unpause");
        }
    }
}
