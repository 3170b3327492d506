package dev.kiln.cli;

import dev.kiln.api.Kilnd;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code kiln daemon}: runs kilnd in the foreground (the CLI starts one in the background when none answers). */
@Command(name = "daemon", description = "Run kilnd, kiln's daemon, in the foreground")
final class DaemonCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @picocli.CommandLine.Option(names = "--help", usageHelp = true, description = "Show this help and exit")
    boolean help;

    @Option(names = "--default-isolation", paramLabel = "KIND",
            description = "container, gvisor or vm (default: /etc/kiln/config.yaml's, else container)")
    String defaultIsolation;

    @Option(names = "--config", paramLabel = "FILE", description = "Configuration file (default: /etc/kiln/config.yaml)")
    Path config = Path.of("/etc/kiln/config.yaml");

    @Override
    public Integer call() throws Exception {
        KilnCommand kiln = (KilnCommand) spec.root().userObject();
        Kilnd.Options o = Kilnd.Options.read(config, kiln.root.toAbsolutePath(), kiln.runRoot.toAbsolutePath(),
                kiln.insecureRegistries, defaultIsolation, kiln.debug);
        Kilnd.run(o);
        return 0;
    }
}
