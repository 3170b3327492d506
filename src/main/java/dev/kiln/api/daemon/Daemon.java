package dev.kiln.api.daemon;

import dev.kiln.api.ApiHandler;
import dev.kiln.api.ApiLimits;
import dev.kiln.api.ArchiveRoutes;
import dev.kiln.api.AuditRoutes;
import dev.kiln.api.ImageRoutes;
import dev.kiln.api.NetworkRoutes;
import dev.kiln.api.VolumeRoutes;
import dev.kiln.api.RequestBody;
import dev.kiln.api.Router;
import dev.kiln.api.SandboxRoutes;
import dev.kiln.api.UnfinishedRequests;

import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.engine.Engine;
import dev.kiln.tls.TcpAddress;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.unixdomain.server.UnixDomainServerConnector;
import org.eclipse.jetty.util.thread.VirtualThreadPool;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

/**
 * kilnd: one HTTP server on a unix socket ({@code RUN_ROOT/kiln.sock}, mode 0660, group {@code kiln} when that group
 * exists), handlers on virtual threads, and TCP listeners only when asked for, each with mutual TLS
 * ({@link TlsListener}). Every listener serves both faces (native and Docker). Stopping the daemon stops serving;
 * sandboxes keep running under their shims and are adopted by the next daemon.
 *
 * <p>No client can hold the daemon ({@link ApiLimits}): every listener closes connections idle before or between
 * requests and ones that take too long to send their first request ({@link FirstRequestDeadline}); request bodies
 * have a deadline and a per-peer bound ({@link RequestBody}, {@link UnfinishedRequests}); handlers are not counted:
 * a virtual thread is cheap, and a bound on them is what let 200 stalled bodies take every slot, including the ones
 * Jetty needs to notice that their clients had gone.
 */
public final class Daemon implements AutoCloseable {
    private static final KilnLog LOG = KilnLog.of(Daemon.class);

    private final Engine engine;
    private final Server server;
    private final Path socket;
    private final List<ServerConnector> tcp = new ArrayList<>();

    public Daemon(Engine engine, Path runRoot) {
        this(engine, runRoot, List.of());
    }

    public Daemon(Engine engine, Path runRoot, List<TlsListener> tcpListeners) {
        this.engine = engine;
        this.socket = runRoot.resolve("kiln.sock");
        ApiLimits limits = ApiLimits.fromSystemProperties();
        VirtualThreadPool threads = new VirtualThreadPool();
        threads.setName("kilnd");
        threads.setMaxConcurrentTasks(0); // unbounded: Jetty's default of 200 is the wedge described above
        this.server = new Server(threads);
        HttpConfiguration http = new HttpConfiguration();
        http.setSendServerVersion(false);
        http.setSendDateHeader(false);
        UnixDomainServerConnector connector = new UnixDomainServerConnector(server, new HttpConnectionFactory(http));
        connector.setUnixDomainPath(socket);
        connector.setIdleTimeout(limits.idleTimeout().toMillis());
        connector.setAcceptQueueSize(ApiLimits.ACCEPT_QUEUE);
        connector.addBean(new FirstRequestDeadline(connector.getScheduler(), limits.idleTimeout()));
        server.addConnector(connector);
        for (TlsListener listener : tcpListeners) {
            ServerConnector c = listener.connector(server, http, limits.idleTimeout());
            c.addBean(new FirstRequestDeadline(c.getScheduler(), limits.idleTimeout()));
            tcp.add(c);
            server.addConnector(c);
        }
        Router v1 = new Router();
        v1.add("GET", "/v1/version", x -> x.json(java.util.Map.of("version", version(), "api", "v1")));
        new ImageRoutes(engine).register(v1);
        new SandboxRoutes(engine).register(v1);
        new NetworkRoutes(engine).register(v1);
        new VolumeRoutes(engine).register(v1);
        new dev.kiln.api.CheckpointRoutes(engine).register(v1);
        v1.add("GET", "/v1/kernels", x -> x.json(engine.kernels()));
        ArchiveRoutes.register(v1, engine);
        AuditRoutes.register(v1, engine, runRoot);
        Router docker = new Router(); // after v1: serves /_ping (with Docker's headers) for both faces
        new dev.kiln.api.docker.DockerApi(engine, version()).register(docker);
        server.setHandler(new ApiHandler(List.of(v1, docker), limits));
    }

    public Path socket() {
        return socket;
    }

    /** The TCP listeners as {@code tcp://HOST:PORT}, with the ports bound (a requested port 0 becomes a real one). */
    public List<String> tcpAddresses() {
        return tcp.stream().map(c -> new TcpAddress(c.getHost(), c.getLocalPort()).toString()).toList();
    }

    public void start() {
        try {
            Files.createDirectories(socket.getParent());
            Files.deleteIfExists(socket);
            engine.sandboxes().reconcile();
            server.start();
            secureSocket();
        } catch (KilnException e) {
            throw e;
        } catch (Exception e) {
            stopQuietly();
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "kilnd cannot listen on " + listeners() + ": "
                    + e.getMessage(), e);
        }
    }

    private String listeners() {
        List<String> all = new ArrayList<>(List.of(socket.toString()));
        tcp.forEach(c -> all.add(new TcpAddress(c.getHost(), c.getPort()).toString()));
        return String.join(", ", all);
    }

    private void stopQuietly() {
        try {
            server.stop();
        } catch (Exception ignored) {
            // the start already failed; that error is the one to report
        }
    }

    /** Only root and the kiln group may talk to the daemon: the API can run anything as root. */
    private void secureSocket() throws IOException {
        Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-rw----"));
        try {
            GroupPrincipal kiln = socket.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByGroupName("kiln");
            Files.getFileAttributeView(socket, PosixFileAttributeView.class).setGroup(kiln);
        } catch (java.nio.file.attribute.UserPrincipalNotFoundException e) {
            // no kiln group on this host: root only
        }
    }

    public void join() throws InterruptedException {
        server.join();
    }

    static String version() {
        String v = Daemon.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }

    @Override
    public void close() {
        try {
            server.stop();
        } catch (Exception e) {
            LOG.warn("stopping the server: " + e.getMessage(), e);
        }
        try {
            Files.deleteIfExists(socket);
        } catch (IOException ignored) {
            // a stale socket is replaced at the next start
        }
    }
}
