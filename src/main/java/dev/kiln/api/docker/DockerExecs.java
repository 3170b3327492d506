package dev.kiln.api.docker;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import dev.kiln.KilnException;
import dev.kiln.api.Exchange;
import dev.kiln.engine.Engine;
import dev.kiln.engine.ExecConfig;
import dev.kiln.engine.Execs;
import dev.kiln.engine.Sandbox;
import dev.kiln.isolation.RunningProcess;
import dev.kiln.isolation.AttachConnection;

import java.io.IOException;
import java.io.OutputStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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

    private final Execs execs;
    private final DockerContainers containers;

    DockerExecs(Engine engine, DockerContainers containers) {
        this.execs = engine.execs();
        this.containers = containers;
    }

    void register(Routes r) {
        r.add("POST", "/containers/{id}/exec", this::create);
        r.add("POST", "/exec/{id}/start", this::start);
        r.add("GET", "/exec/{id}/json", x -> x.json(inspect(exec(x.path("id")))));
        r.add("POST", "/exec/{id}/resize", x -> {
            RunningProcess p = exec(x.path("id")).process().orElse(null);
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

    private Execs.Exec exec(String id) {
        return execs.find(id).orElseThrow(() -> KilnException.notFound("No such exec instance: " + id));
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
        if (s.paused()) {
            throw KilnException.conflict("Container " + s.id() + " is paused, unpause the container before exec");
        }
        ExecConfig req = new ExecConfig(cmd, body.env(), CreateTranslator.text(body.workingDir()),
                CreateTranslator.text(body.user()), body.tty(), body.attachStdin(), false,
                !Boolean.FALSE.equals(body.attachStdout()), !Boolean.FALSE.equals(body.attachStderr()));
        x.json(201, Map.of("Id", execs.create(s.id(), req).id()));
    }

    private void start(Exchange x) throws IOException {
        Execs.Exec e = exec(x.path("id"));
        ExecStartBody body = x.body(ExecStartBody.class);
        boolean detach = body.detach();
        ExecConfig r = e.config();
        // Docker's rule: the start request's Tty, not the exec's, decides the stream's framing
        StreamCopy.Options o = new StreamCopy.Options(body.tty(), r.attachStdout(), r.attachStderr(), r.openStdin());
        RunningProcess process;
        try {
            process = execs.start(e.id(), detach);
        } catch (KilnException failed) {
            if (detach || failed.exitCode() == null) {
                throw failed;
            }
            // as dockerd: the stream is already the client's, the error travels in it and exec inspect says 126/127
            byte[] line = (failed.getMessage() + "\r\n").getBytes(java.nio.charset.StandardCharsets.UTF_8);
            byte[] payload = o.tty() ? line : StreamCopy.frame(1, line);
            if (HijackedConnection.requested(x)) {
                HijackedConnection.upgrade(x, o.contentType(), client -> client.write(payload, 0, payload.length));
            } else {
                x.status(200);
                x.contentType(o.contentType());
                x.out().write(payload);
            }
            return;
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

    /** Docker's exec inspect JSON. */
    private static Map<String, Object> inspect(Execs.Exec e) {
        ExecConfig r = e.config();
        Map<String, Object> process = new LinkedHashMap<>();
        process.put("tty", r.tty());
        process.put("entrypoint", r.cmd().getFirst());
        process.put("arguments", r.cmd().subList(1, r.cmd().size()));
        process.put("privileged", false);
        process.put("user", r.user() == null ? "" : r.user());
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ID", e.id());
        m.put("Running", e.running());
        m.put("ExitCode", e.exitStatus().map(s -> (Object) s.exitCode()).orElse(null));
        m.put("ProcessConfig", process);
        m.put("OpenStdin", r.openStdin());
        m.put("OpenStderr", r.attachStderr());
        m.put("OpenStdout", r.attachStdout());
        m.put("CanRemove", false);
        m.put("ContainerID", e.sandboxId());
        m.put("DetachKeys", "");
        // unknown here: the exec runs behind its sandbox's monitor (kiln-shim, a runtime, a guest)
        m.put("Pid", 0);
        return m;
    }
}
