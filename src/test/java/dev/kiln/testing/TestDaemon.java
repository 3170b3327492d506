package dev.kiln.testing;

import dev.kiln.api.Daemon;
import dev.kiln.api.Kilnd;
import dev.kiln.engine.Engine;

import java.nio.file.Path;
import java.util.List;

/**
 * A real kilnd (engine, isolators, HTTP server on a unix socket) inside the test JVM, on a private root and run
 * root. Tests drive it through the CLI with {@code --host unix://SOCKET}. The daemon-crash tests run kilnd as its
 * own process instead (see {@link KilndProcess}).
 */
public final class TestDaemon implements AutoCloseable {

    private final Engine engine;
    private final Daemon daemon;

    public TestDaemon(Path root, Path runRoot) {
        Kilnd.Options o = Kilnd.Options.read(Path.of("/nonexistent/kiln.yaml"), root, runRoot, List.of(),
                null, false);
        this.engine = new Engine(root, runRoot, o.insecureRegistries(), Kilnd.isolators(o), o.defaultIsolation());
        this.daemon = new Daemon(engine, runRoot, false);
        daemon.start();
    }

    public Path socket() {
        return daemon.socket();
    }

    public String host() {
        return "unix://" + socket();
    }

    @Override
    public void close() {
        daemon.close();
        engine.close();
    }
}
