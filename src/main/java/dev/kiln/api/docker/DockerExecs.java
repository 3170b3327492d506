package dev.kiln.api.docker;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import dev.kiln.KilnException;
import dev.kiln.api.Exchange;
import dev.kiln.api.v1.ExecRequest;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Sandbox;
import dev.kiln.isolation.RunningProcess;
import dev.kiln.isolation.AttachConnection;

import java.io.IOException;
import java.io.OutputStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;

/** Docker's exec endpoints: create, start (hijacked unless detached), inspect, resize. Execs live in memory. */
final class DockerExecs {

    /** Docker's ExecConfig, typed (see {@link dev.kiln.api.JsonBody}); AttachStdout/AttachStderr default to true. */
    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record ExecCreateBody(List<String> cmd, List<String> env, String workingDir, String user, boolean privileged,
                          boolean tty, boolean attachStdin, Boolean attachStdout, Boolean attachStderr) {
    }

    /** Docker's ExecStartConfig; ConsoleSize is [height, width]. */
    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record ExecStartBody(boolean detach, boolean tty, List<Integer> consoleSize) {
    }

    private record Session(String id, String containerId, ExecRequest request, boolean stdout, boolean stderr,
                           AtomicReference<RunningProcess> process) {
    }

    private final Engine engine;
    private final DockerContainers containers;
    private final Map<String, Session> sessions = new ConcurrentHashMap<>();

    DockerExecs(Engine engine, DockerContainers containers) {
        this.engine = engine;
        this.containers = containers;
    }

    void register(Routes r) {
        r.add("POST", "/containers/{id}/exec", this::create);
        r.add("POST", "/exec/{id}/start", this::start);
        r.add("GET", "/exec/{id}/json", x -> x.json(inspect(session(x.path("id")))));
        r.add("POST", "/exec/{id}/resize", x -> {
            RunningProcess p = session(x.path("id")).process.get();
            if (p != null && p.exitStatus().isEmpty()) {
                try (AttachConnection c = p.attach()) {
                    c.resize(x.intQuery("h", 24), x.intQuery("w", 80));
                } catch (IOException e) {
                    // ended meanwhile
                }
            }
            x.status(200);
        });
    }

    private Session session(String id) {
        Session s = sessions.get(id);
        if (s == null) {
            throw KilnException.notFound("No such exec instance: " + id);
        }
        return s;
    }

    private void create(Exchange x) {
        Sandbox s = containers.sandbox(x.path("id"));
        ExecCreateBody body = x.body(ExecCreateBody.class);
        List<String> cmd = body.cmd();
        if (cmd == null || cmd.isEmpty()) {
            throw KilnException.invalid("No exec command specified");
        }
        if (body.privileged()) {
            throw KilnException.invalid("kiln does not support privileged exec yet");
        }
        if (!s.running()) {
            throw KilnException.conflict("Container " + s.id() + " is not running");
        }
        ExecRequest req = new ExecRequest(cmd, body.env(), CreateTranslator.text(body.workingDir()),
                CreateTranslator.text(body.user()), body.tty(), body.attachStdin(), false);
        String id = UUID.randomUUID().toString().replace("-", "") + UUID.randomUUID().toString().replace("-", "");
        sessions.put(id, new Session(id, s.id(), req, !Boolean.FALSE.equals(body.attachStdout()),
                !Boolean.FALSE.equals(body.attachStderr()), new AtomicReference<>()));
        x.json(201, Map.of("Id", id));
    }

    private void start(Exchange x) throws IOException {
        Session e = session(x.path("id"));
        ExecStartBody body = x.body(ExecStartBody.class);
        boolean detach = body.detach();
        ExecRequest r = e.request;
        ExecRequest req = new ExecRequest(r.cmd(), r.env(), r.workdir(), r.user(), r.tty(), r.openStdin(), detach);
        RunningProcess process;
        synchronized (e) {
            if (e.process.get() != null) {
                throw KilnException.conflict("Exec " + e.id + " has already been started");
            }
            process = engine.sandboxes().exec(e.containerId, e.id, req);
            e.process.set(process);
        }
        if (detach) {
            x.status(200);
            return;
        }
        AttachConnection shim = process.attach();
        List<Integer> size = body.consoleSize();
        if (r.tty() && size != null && size.size() == 2 && size.get(0) != null && size.get(1) != null
                && size.get(0) > 0 && size.get(1) > 0) {
            shim.resize(size.get(0), size.get(1));
        }
        StreamCopy.Options o = new StreamCopy.Options(r.tty(), e.stdout, e.stderr, r.openStdin());
        if (HijackedConnection.requested(x)) {
            HijackedConnection.upgrade(x, o.contentType(), client -> {
                try (shim) {
                    StreamCopy.hijacked(client, shim, o);
                }
            });
            return;
        }
        try (shim) {
            x.status(200);
            x.contentType(o.contentType());
            OutputStream out = x.out();
            out.flush();
            StreamCopy.body(out, shim, o);
        }
    }

    private Map<String, Object> inspect(Session e) {
        RunningProcess p = e.process.get();
        boolean running = p != null && p.exitStatus().isEmpty();
        Map<String, Object> process = new LinkedHashMap<>();
        process.put("tty", e.request.tty());
        process.put("entrypoint", e.request.cmd().getFirst());
        process.put("arguments", e.request.cmd().subList(1, e.request.cmd().size()));
        process.put("privileged", false);
        process.put("user", e.request.user() == null ? "" : e.request.user());
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ID", e.id);
        m.put("Running", running);
        m.put("ExitCode", p == null || running ? null : p.exitStatus().get().exitCode());
        m.put("ProcessConfig", process);
        m.put("OpenStdin", e.request.openStdin());
        m.put("OpenStderr", e.stderr);
        m.put("OpenStdout", e.stdout);
        m.put("CanRemove", false);
        m.put("ContainerID", e.containerId);
        m.put("DetachKeys", "");
        m.put("Pid", 0);
        return m;
    }
}
