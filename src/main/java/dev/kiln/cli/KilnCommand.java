package dev.kiln.cli;

import dev.kiln.engine.Images;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;

/** {@code kiln}: the top-level command and the options every command takes. */
@Command(name = "kiln", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "Run OCI images as isolated sandboxes: container, gVisor or microVM.",
        subcommands = {PullCommand.class, PushCommand.class, ImagesCommand.class, ImageCommand.class,
                RmiCommand.class, TagCommand.class, LoadCommand.class, SaveCommand.class, ImportCommand.class,
                InspectCommand.class})
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

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    Images images() {
        return new Images(root.toAbsolutePath(), runRoot.toAbsolutePath(), new LinkedHashSet<>(insecureRegistries));
    }
}
