package dev.kiln.cli;

import dev.kiln.KilnException;
import dev.kiln.api.v1.UpdateRequest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.List;

/** {@code kiln update}: new limits or restart policy for sandboxes, running or not. */
@Command(name = "update", description = "Change the CPU, memory and task limits or the restart policy of sandboxes "
        + "(a running vm's limits are fixed at its boot)")
final class UpdateCommand extends Subcommand {

    @Option(names = "--cpus", paramLabel = "N", description = "CPUs, e.g. 1.5")
    String cpus;

    @Option(names = {"-m", "--memory"}, paramLabel = "SIZE", description = "Memory limit, e.g. 512m")
    String memory;

    @Option(names = "--pids-limit", paramLabel = "N", description = "Task limit (-1: none)")
    Long pidsLimit;

    @Option(names = "--restart", paramLabel = "POLICY", description = "no, on-failure[:N], always or unless-stopped")
    String restart;

    @Parameters(arity = "1..*", paramLabel = "SANDBOX")
    List<String> refs;

    @Override
    int run(DaemonClient daemon) throws Exception {
        if (cpus == null && memory == null && pidsLimit == null && restart == null) {
            throw KilnException.invalid("you must provide one or more flags when using this command");
        }
        UpdateRequest r = new UpdateRequest(cpus == null ? null : CreateOptions.nanoCpus(cpus),
                memory == null ? null : CreateOptions.bytes(memory), pidsLimit, restart);
        int code = 0;
        for (String ref : refs) {
            try {
                daemon.call("POST", "/v1/sandboxes/" + q(ref) + "/update", r).ok().close();
                out().println(ref);
            } catch (Exception e) {
                err().println("kiln: " + e.getMessage());
                code = refs.size() == 1 ? Main.EXIT_KILN_FAILED : 1;
            }
        }
        return code;
    }
}
