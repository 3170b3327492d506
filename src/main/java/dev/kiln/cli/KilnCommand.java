package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

import java.nio.file.Path;
import java.util.List;

/** {@code kiln}: the top-level command and the options every command takes. */
@Command(name = "kiln", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "Run OCI images as isolated sandboxes: container, gVisor or microVM.")
public final class KilnCommand implements Runnable {

    @Option(names = "--root", scope = ScopeType.INHERIT, paramLabel = "DIR",
            description = "State and images (default: ${DEFAULT-VALUE})", defaultValue = "/var/lib/kiln")
    Path root;

    @Option(names = "--run-root", scope = ScopeType.INHERIT, paramLabel = "DIR",
            description = "Sockets, pids and mounts (default: ${DEFAULT-VALUE})", defaultValue = "/run/kiln")
    Path runRoot;

    @Option(names = "--debug", scope = ScopeType.INHERIT, description = "Show stack traces of errors")
    boolean debug;

    @Option(names = "--insecure-registry", scope = ScopeType.INHERIT, paramLabel = "HOST",
            description = "Use plain HTTP for this registry (loopback registries always are)")
    List<String> insecureRegistries = List.of();

    @Option(names = {"-H", "--host"}, scope = ScopeType.INHERIT, paramLabel = "unix://PATH|tcp://HOST:PORT",
            description = "kilnd's socket, or its TCP address (always TLS; default: $KILN_HOST, else "
                    + "RUN_ROOT/kiln.sock)")
    String host;

    // Docker's TLS flags. The client uses them for tcp:// hosts (defaults $KILN_CERT_PATH or ~/.kiln/{ca,cert,key}.pem);
    // `kiln daemon` requires all three with --listen tcp://… and has no defaults.
    @Option(names = "--tlsverify", scope = ScopeType.INHERIT,
            description = "Accepted as Docker's: a tcp:// host is always TLS with the daemon's certificate verified")
    boolean tlsVerify;

    @Option(names = "--tlscacert", scope = ScopeType.INHERIT, paramLabel = "PEM",
            description = "CA certificates that sign the peer's certificate (client default: ~/.kiln/ca.pem)")
    Path tlsCaCert;

    @Option(names = "--tlscert", scope = ScopeType.INHERIT, paramLabel = "PEM",
            description = "This side's TLS certificate (client default: ~/.kiln/cert.pem)")
    Path tlsCert;

    @Option(names = "--tlskey", scope = ScopeType.INHERIT, paramLabel = "PEM",
            description = "This side's private key, PKCS#8 or PKCS#1/SEC1, unencrypted (client default: ~/.kiln/key.pem)")
    Path tlsKey;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    private DaemonClient client;

    /** Set by {@link Main}: where commands read input and write raw output (attach, logs, save). */
    Main.Stdio stdio = new Main.Stdio(System.in, System.out, System.err);

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /**
     * The daemon to talk to. With no --host and no KILN_HOST, a daemon for this --root/--run-root is started when
     * none answers; an explicit host is never started for.
     */
    DaemonClient client() {
        if (client != null) {
            return client;
        }
        String h = host != null ? host : System.getenv("KILN_HOST");
        if (h != null && !h.isEmpty()) {
            if (h.startsWith("tcp://")) {
                client = new DaemonClient(TlsTransport.of(h, tlsCaCert, tlsCert, tlsKey));
                return client;
            }
            if (!h.startsWith("unix://")) {
                throw dev.kiln.KilnException.invalid("unsupported --host \"" + h
                        + "\" (kilnd listens on unix://PATH, or tcp://HOST:PORT with TLS)");
            }
            client = new DaemonClient(Path.of(h.substring("unix://".length())));
            return client;
        }
        // no probe connection first: the command's own request finds out (a probe was one more connection per
        // command, for kilnd too, issue 17)
        client = new DaemonClient(new DaemonClient.StartingTransport(
                new DaemonClient.UnixTransport(runRoot.toAbsolutePath().resolve("kiln.sock")),
                () -> DaemonStarter.start(root.toAbsolutePath(), runRoot.toAbsolutePath(), insecureRegistries, debug)));
        return client;
    }
}
