package dev.kiln.cli;

import dev.kiln.api.daemon.Kilnd;
import dev.kiln.api.daemon.TlsListener;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
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

    @Option(names = "--listen", paramLabel = "tcp://HOST:PORT",
            description = "Also listen on TCP, with mutual TLS: needs --tlscacert, --tlscert and --tlskey "
                    + "(repeatable; -H tcp://… is the same, as dockerd's)")
    List<String> listen = new ArrayList<>();

    @Option(names = "--log-level", paramLabel = "LEVEL",
            description = "debug, info, warn or error (default: config.yaml's log-level, else info; debug with --debug)")
    String logLevel;

    @Override
    public Integer call() throws Exception {
        KilnCommand kiln = (KilnCommand) spec.root().userObject();
        List<String> addresses = new ArrayList<>(listen);
        if (kiln.host != null) { // dockerd -H tcp://…; KILN_HOST names the daemon a client talks to, so not here
            addresses.add(kiln.host);
        }
        List<TlsListener> tcp = TlsListener.of(addresses, absolute(kiln.tlsCaCert), absolute(kiln.tlsCert),
                absolute(kiln.tlsKey));
        Kilnd.Options o = Kilnd.Options.read(config, kiln.root.toAbsolutePath(), kiln.runRoot.toAbsolutePath(),
                kiln.insecureRegistries, defaultIsolation, kiln.debug).withTcpListeners(tcp).withLogLevel(logLevel);
        Kilnd.run(o);
        return 0;
    }

    private static Path absolute(Path p) {
        return p == null ? null : p.toAbsolutePath();
    }
}
