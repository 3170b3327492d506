package dev.kiln.api.docker;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.api.Exchange;
import dev.kiln.api.Router;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Events;
import dev.kiln.engine.Sandbox;
import dev.kiln.engine.SandboxState;
import dev.kiln.isolation.Isolator;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * kilnd's Docker Engine API face (docs/docker-api.md): the same engine, state and sandboxes as the native {@code /v1}
 * API, spoken as Docker's API {@value Routes#API_VERSION} so the {@code docker} CLI and Docker SDKs work against the
 * kiln socket. This class holds the system endpoints and wires the others.
 */
public final class DockerApi {

    static final ObjectMapper JSON = new ObjectMapper();

    private final Engine engine;
    private final String version;
    private Exits exits;

    public DockerApi(Engine engine, String version) {
        this.engine = engine;
        this.version = version;
    }

    /** Adds every Docker route to {@code router}, which must come after kiln's native router. */
    public void register(Router router) {
        Routes r = new Routes(router);
        exits = new Exits(engine);
        r.add("GET", "/_ping", this::ping);
        r.add("GET", "/version", x -> x.json(versionDoc()));
        r.add("GET", "/info", x -> x.json(info()));
        r.add("GET", "/events", this::events);
        r.add("GET", "/system/df", x -> x.json(Map.of("LayersSize", 0,
                "Images", engine.images().list().stream().map(i -> DockerImages.summary(engine, i)).toList(),
                "Containers", engine.sandboxes().list().stream().map(s -> ContainerView.row(engine, s)).toList(),
                "Volumes", new DockerVolumes(engine).usage(), "BuildCache", List.of())));
        new DockerBuild(engine).register(r);
        new DockerImages(engine).register(r);
        new DockerContainers(engine, exits).register(r);
        new dev.kiln.api.CheckpointRoutes(engine).register(r::add, "/containers");
        new DockerNetworks(engine).register(r);
        new DockerVolumes(engine).register(r);
        // a Docker daemon outside a swarm answers every swarm-mode endpoint so; clients' clean-up relies on it
        for (String area : List.of("swarm", "nodes", "services", "tasks", "secrets", "configs")) {
            for (String method : List.of("GET", "POST", "DELETE")) {
                r.add(method, "/" + area, DockerApi::notInASwarm);
                r.add(method, "/" + area + "/{rest*}", DockerApi::notInASwarm);
            }
        }
        for (String method : List.of("GET", "POST", "PUT", "DELETE")) {
            r.addVersioned(method, "/{rest*}", x -> Routes.unsupported(x, method + " /" + x.path("rest")));
        }
    }

    private static void notInASwarm(Exchange x) {
        x.discardBody(1 << 20);
        x.json(503, Map.of("message", "This node is not part of a swarm"));
    }

    private void ping(Exchange x) throws IOException {
        x.status(200);
        x.header("API-Version", Routes.API_VERSION);
        x.header("Docker-Experimental", "false");
        x.header("OSType", "linux");
        x.header("Builder-Version", "1"); // no BuildKit: the docker CLI takes the classic builder's POST /build
        x.header("Cache-Control", "no-cache, no-store, must-revalidate");
        x.header("Pragma", "no-cache");
        x.contentType("text/plain; charset=utf-8");
        if (!x.request().getMethod().equals("HEAD")) {
            x.out().write("OK".getBytes(StandardCharsets.US_ASCII));
        }
    }

    private Map<String, Object> versionDoc() {
        Map<String, Object> details = new LinkedHashMap<>();
        details.put("ApiVersion", Routes.API_VERSION);
        details.put("MinAPIVersion", Routes.MIN_API_VERSION);
        details.put("Os", "linux");
        details.put("Arch", arch());
        details.put("KernelVersion", kernel());
        Map<String, Object> engineComponent = new LinkedHashMap<>();
        engineComponent.put("Name", "Engine");
        engineComponent.put("Version", version);
        engineComponent.put("Details", details);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("Platform", Map.of("Name", "kiln " + version));
        m.put("Components", List.of(engineComponent));
        m.put("Version", version);
        m.put("ApiVersion", Routes.API_VERSION);
        m.put("MinAPIVersion", Routes.MIN_API_VERSION);
        m.put("GitCommit", "");
        m.put("GoVersion", "java" + Runtime.version().feature());
        m.put("Os", "linux");
        m.put("Arch", arch());
        m.put("KernelVersion", kernel());
        m.put("BuildTime", "");
        return m;
    }

    private Map<String, Object> info() {
        List<Sandbox> all = engine.sandboxes().list();
        long running = all.stream().filter(s -> s.state() == SandboxState.RUNNING).count();
        long paused = all.stream().filter(Sandbox::paused).count();
        long stopped = all.size() - running - paused;
        // each available isolation as kiln-NAME, and as the runtime name Docker clients know it by (runc, runsc)
        Map<String, Object> runtimes = new LinkedHashMap<>();
        for (Isolator i : engine.isolators().available()) {
            Map<String, String> path = Map.of("path", i.runtime(null));
            runtimes.put("kiln-" + i.isolation().name(), path);
            runtimes.put(i.isolation().dockerRuntime(), path);
        }
        String defaultRuntime = engine.isolators().all().getFirst().isolation().dockerRuntime();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ID", "kiln");
        m.put("Containers", all.size());
        m.put("ContainersRunning", running);
        m.put("ContainersPaused", paused);
        m.put("ContainersStopped", stopped);
        m.put("Images", engine.images().list().stream().map(i -> i.id()).distinct().count()); // tags are not images
        m.put("Driver", "kiln");
        m.put("DriverStatus", List.of(List.of("Isolations", String.join(", ", isolations()))));
        m.put("Plugins", Map.of("Volume", List.of("local"), "Network", List.of("null"), "Log", List.of("json-file")));
        m.put("MemoryLimit", true);
        m.put("SwapLimit", false);
        m.put("CpuCfsPeriod", true);
        m.put("CpuCfsQuota", true);
        m.put("PidsLimit", true);
        m.put("IPv4Forwarding", false);
        m.put("Debug", false);
        m.put("NFd", 0);
        m.put("NGoroutines", Thread.activeCount());
        m.put("SystemTime", Instant.now().toString());
        m.put("LoggingDriver", "json-file");
        m.put("CgroupDriver", "cgroupfs");
        m.put("CgroupVersion", Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers")) ? "2" : "1");
        m.put("NEventsListener", 0);
        m.put("KernelVersion", kernel());
        m.put("OperatingSystem", "kiln " + version);
        m.put("OSVersion", "");
        m.put("OSType", "linux");
        m.put("Architecture", arch().equals("amd64") ? "x86_64" : arch());
        m.put("NCPU", Runtime.getRuntime().availableProcessors());
        m.put("MemTotal", memTotal());
        m.put("IndexServerAddress", "https://index.docker.io/v1/");
        m.put("DockerRootDir", "");
        m.put("Name", hostname());
        m.put("Labels", List.of());
        m.put("ExperimentalBuild", false);
        m.put("ServerVersion", version);
        m.put("Runtimes", runtimes);
        m.put("DefaultRuntime", defaultRuntime);
        m.put("Swarm", Map.of("LocalNodeState", "inactive", "NodeID", "", "NodeAddr", "", "ControlAvailable", false,
                "Error", "", "RemoteManagers", List.of()));
        m.put("LiveRestoreEnabled", true);
        m.put("Isolation", "");
        m.put("InitBinary", "");
        m.put("SecurityOptions", List.of("name=seccomp,profile=builtin"));
        m.put("Warnings", List.of("kiln: builds are not supported by the Docker API face yet, nor "
                + "networking for the vm isolation (see docs/docker-api.md)"));
        return m;
    }

    private List<String> isolations() {
        return engine.isolators().available().stream().map(i -> i.isolation().name()).toList();
    }

    // ---- events ----

    private void events(Exchange x) throws Exception {
        Instant since = Times.parse(x.query("since"));
        Instant until = Times.parse(x.query("until"));
        Map<String, List<String>> filters = Filters.parse(x.query("filters"));
        BlockingQueue<Events.Event> queue = new LinkedBlockingQueue<>();
        x.status(200);
        x.contentType("application/json");
        OutputStream out = x.out();
        out.flush();
        try (AutoCloseable sub = engine.events().subscribe(since, queue::add)) {
            while (true) {
                long waitMs = until == null ? 1000 : until.toEpochMilli() - System.currentTimeMillis();
                Events.Event e = waitMs <= 0 ? queue.poll() : queue.poll(Math.min(waitMs, 1000), TimeUnit.MILLISECONDS);
                if (e == null) {
                    if (until != null && System.currentTimeMillis() >= until.toEpochMilli()) {
                        return;
                    }
                    continue;
                }
                if (until != null && e.time().isAfter(until)) {
                    return;
                }
                if (!matches(e, filters)) {
                    continue;
                }
                dev.kiln.api.JsonLines.write(out, JSON, event(e));
            }
        }
    }

    private boolean matches(Events.Event e, Map<String, List<String>> f) {
        return Filters.any(f, "type", t -> t.equals(e.type()))
                && Filters.any(f, "event", a -> a.equals(e.action()) || e.action().startsWith(a + ":"))
                && Filters.any(f, "container", c -> c.equals(e.name()) || e.id().startsWith(c))
                && Filters.any(f, "image", i -> i.equals(e.image()));
    }

    private Map<String, Object> event(Events.Event e) {
        Map<String, Object> attributes = new LinkedHashMap<>();
        attributes.put("image", e.image());
        attributes.put("name", e.name());
        if (e.action().equals("die")) {
            Integer code = exits.last(e.id());
            if (code != null) {
                attributes.put("exitCode", String.valueOf(code));
            }
        }
        long nanos = e.time().getEpochSecond() * 1_000_000_000L + e.time().getNano();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("status", e.action());
        m.put("id", e.id());
        m.put("from", e.image());
        m.put("Type", e.type());
        m.put("Action", e.action());
        m.put("Actor", Map.of("ID", e.id(), "Attributes", attributes));
        m.put("scope", "local");
        m.put("time", e.time().getEpochSecond());
        m.put("timeNano", nanos);
        return m;
    }

    // ---- host facts ----

    static String arch() {
        String a = System.getProperty("os.arch");
        return switch (a) {
            case "amd64", "x86_64" -> "amd64";
            case "aarch64" -> "arm64";
            default -> a;
        };
    }

    private static String kernel() {
        return System.getProperty("os.version");
    }

    private static long memTotal() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // unknown
        }
        return 0;
    }

    private static String hostname() {
        try {
            return Files.readString(Path.of("/proc/sys/kernel/hostname")).strip();
        } catch (IOException e) {
            return "kiln";
        }
    }
}
