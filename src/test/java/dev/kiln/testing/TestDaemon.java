package dev.kiln.testing;

import dev.kiln.api.daemon.Kilnd;

import java.nio.file.Path;
import java.util.List;

/**
 * A real kilnd (engine, isolators, HTTP server on a unix socket) inside the test JVM, on a private root and run
 * root. Tests drive it through the CLI with {@code --host unix://SOCKET}. The daemon-crash tests run kilnd as its
 * own process instead (see {@link KilndProcess}).
 */
public final class TestDaemon implements AutoCloseable {

    private final Kilnd.Running running;
    private final Path root;

    public TestDaemon(Path root, Path runRoot) {
        this(root, runRoot, Path.of("/nonexistent/kiln.yaml"));
    }

    /** As above, with {@code config} as its config.yaml. */
    public TestDaemon(Path root, Path runRoot, Path config) {
        this.root = root;
        running = Kilnd.start(Kilnd.Options.read(config, root, runRoot, List.of(), null, false));
    }

    public Path socket() {
        return running.socket();
    }

    public String host() {
        return "unix://" + socket();
    }

    @Override
    public void close() {
        running.close();
        RootBridges.delete(root);
    }
}
