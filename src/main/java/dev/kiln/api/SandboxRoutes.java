package dev.kiln.api;

import dev.kiln.KilnException;
import dev.kiln.api.v1.CreateRequest;
import dev.kiln.api.v1.ExecRequest;
import dev.kiln.api.v1.StreamFrame;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Execs;
import dev.kiln.engine.Sandbox;
import dev.kiln.engine.Sandboxes;
import dev.kiln.engine.Signals;
import dev.kiln.isolation.AttachConnection;
import dev.kiln.isolation.LogReader;
import dev.kiln.isolation.RunningProcess;
import dev.kiln.isolation.SandboxStats;
import dev.kiln.isolation.SandboxTask;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;

/** The native sandbox API under {@code /v1/sandboxes} and {@code /v1/execs}. */
public final class SandboxRoutes {

    private final Engine engine;
    private final Sandboxes sandboxes;
    private final Execs execs;

    public SandboxRoutes(Engine engine) {
        this.engine = engine;
        this.sandboxes = engine.sandboxes();
        this.execs = engine.execs();
    }

    /**
     * A sandbox's root filesystem as a tar; refusals (a vm, a running gVisor sandbox) come before the 200, as they
     * are checked before the tree is read.
     */
    public static void export(Engine engine, Exchange x, String id) {
        engine.files().export(id, new java.io.OutputStream() {
            private OutputStream out;

            private OutputStream out() {
                if (out == null) {
                    x.status(200);
                    x.contentType("application/x-tar");
                    out = x.out();
                }
                return out;
            }

            @Override
            public void write(int b) throws IOException {
                out().write(b);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                out().write(b, off, len);
            }

            @Override
            public void flush() throws IOException {
                out().flush();
            }
        });
    }

    /** The header that names the sandbox a {@code POST /v1/sandboxes?start=1&attach=1} made and streams. */
    public static final String SANDBOX_HEADER = "X-Kiln-Sandbox";

    /**
     * {@code ?start=1}: {@code kiln run}'s create and start in one request (one CLI round trip and one request less
     * for kilnd per run, issue 17); with {@code &attach=1} the answer is start?attach=1's stream. As the CLI's two
     * requests did: a --rm sandbox that could not start is removed, any other stays created, and the start's error
     * is the answer.
     */
    private SandboxTask startCreated(Sandbox s, boolean forAttach) {
        try {
            return sandboxes.start(s.id(), forAttach, null);
        } catch (RuntimeException e) {
            if (s.config().autoRemove()) {
                try {
                    sandboxes.remove(s.id(), true);
                } catch (RuntimeException removal) {
                    e.addSuppressed(removal);
                }
            }
            throw e;
        }
    }

    public void register(Router r) {
        r.add("POST", "/v1/sandboxes", x -> {
            Sandbox s = sandboxes.create(V1Translator.config(x.body(CreateRequest.class)));
            if (x.flag("start")) {
                boolean attach = x.flag("attach");
                SandboxTask task = startCreated(s, attach);
                if (attach) { // kiln run, attached: start?attach=1's stream, the new sandbox's ID in a header
                    x.header(SANDBOX_HEADER, s.id());
                    stream(x, task, () -> sandboxes.awaitExitRecorded(s.id(), task));
                    return;
                }
            }
            x.json(201, Map.of("id", s.id(), "name", s.name()));
        });
        r.add("GET", "/v1/sandboxes", x -> x.json(sandboxes.list().stream()
                .map(s -> SandboxView.row(sandboxes, s)).toList()));
        r.add("POST", "/v1/sandboxes/prune", x -> x.json(Map.of("removed", sandboxes.prune().removed())));
        r.add("GET", "/v1/sandboxes/{id}", x -> {
            Sandbox s = sandboxes.get(x.path("id"));
            x.json(SandboxView.inspect(engine, s));
        });
        r.add("GET", "/v1/sandboxes/{id}/port", x -> {
            Sandbox s = sandboxes.get(x.path("id"));
            x.json(Map.of("ports", sandboxes.network(s).map(dev.kiln.network.Attachment::ports).orElse(java.util.List.of())));
        });
        r.add("POST", "/v1/sandboxes/{id}/start", x -> {
            if (x.flag("attach")) {
                Sandbox s = sandboxes.get(x.path("id"));
                SandboxTask task = sandboxes.start(s.id(), true, x.query("checkpoint", null));
                stream(x, task, () -> sandboxes.awaitExitRecorded(s.id(), task));
            } else {
                sandboxes.start(x.path("id"), false, x.query("checkpoint", null));
                x.noContent();
            }
        });
        r.add("POST", "/v1/sandboxes/{id}/attach", x -> {
            Sandbox s = sandboxes.get(x.path("id"));
            stream(x, running(s.id()), () -> sandboxes.awaitExitRecorded(s.id()));
        });
        r.add("POST", "/v1/sandboxes/{id}/stdin", x -> stdin(x, running(x.path("id"))));
        r.add("POST", "/v1/sandboxes/{id}/resize", x -> {
            try (AttachConnection c = running(x.path("id")).attach()) {
                c.resize(x.intQuery("h", 24), x.intQuery("w", 80));
            }
            x.noContent();
        });
        r.add("POST", "/v1/sandboxes/{id}/kill", x -> {
            sandboxes.kill(x.path("id"), Signals.number(x.query("signal", "KILL")));
            x.noContent();
        });
        r.add("POST", "/v1/sandboxes/{id}/stop", x -> {
            var s = sandboxes.get(x.path("id")); // no t: its --stop-timeout, else 10
            sandboxes.stop(s.id(), RunSettingsView.stopTimeout(x.intQuery("t", RunSettingsView.stopSeconds(s))));
            x.noContent();
        });
        r.add("GET", "/v1/sandboxes/{id}/export", x -> export(engine, x, sandboxes.get(x.path("id")).id()));
        r.add("POST", "/v1/sandboxes/{id}/update", x -> {
            Sandbox s = sandboxes.get(x.path("id"));
            dev.kiln.api.v1.UpdateRequest u = x.body(dev.kiln.api.v1.UpdateRequest.class);
            sandboxes.update(s.id(), new dev.kiln.engine.SandboxUpdate(u.nanoCpus(), u.memory(), u.pidsLimit(),
                    u.restart() == null ? null : dev.kiln.engine.RestartPolicy.parse(u.restart())));
            x.noContent();
        });
        r.add("POST", "/v1/sandboxes/{id}/pause", x -> {
            sandboxes.pause(x.path("id"));
            x.noContent();
        });
        r.add("POST", "/v1/sandboxes/{id}/unpause", x -> {
            sandboxes.unpause(x.path("id"));
            x.noContent();
        });
        r.add("POST", "/v1/sandboxes/{id}/restart", x -> {
            sandboxes.restart(x.path("id"), Duration.ofSeconds(x.intQuery("t", 10)));
            x.noContent();
        });
        r.add("POST", "/v1/sandboxes/{id}/wait", x -> x.json(Map.of("exitCode",
                sandboxes.await(x.path("id"), Duration.ofDays(3650)))));
        r.add("DELETE", "/v1/sandboxes/{id}", x -> {
            sandboxes.remove(x.path("id"), x.flag("force"), x.flag("v"));
            x.noContent();
        });
        r.add("POST", "/v1/sandboxes/{id}/rename", x -> {
            sandboxes.rename(x.path("id"), ImageRoutes.required(x, "name"));
            x.noContent();
        });
        r.add("GET", "/v1/sandboxes/{id}/top", x -> x.json(Map.of("ps", sandboxes.top(x.path("id")))));
        r.add("GET", "/v1/sandboxes/{id}/stats", this::stats);
        r.add("GET", "/v1/sandboxes/{id}/logs", this::logs);
        r.add("POST", "/v1/sandboxes/{id}/exec", x -> {
            Sandbox s = sandboxes.get(x.path("id")); // an unknown sandbox is told before a bad body
            ExecRequest req = x.body(ExecRequest.class);
            if (req.cmd() == null || req.cmd().isEmpty()) {
                throw KilnException.invalid("exec needs a command");
            }
            x.json(201, Map.of("id", execs.create(s.id(), V1Translator.exec(req)).id()));
        });
        r.add("POST", "/v1/execs/{id}/start", x -> {
            Execs.Exec e = exec(x.path("id"));
            RunningProcess p = execs.start(e.id(), e.config().detach());
            if (e.config().detach()) {
                x.noContent();
            } else {
                stream(x, p, () -> -1);
            }
        });
        r.add("POST", "/v1/execs/{id}/stdin", x -> stdin(x, startedExec(x.path("id"))));
        r.add("POST", "/v1/execs/{id}/resize", x -> {
            try (AttachConnection c = startedExec(x.path("id")).attach()) {
                c.resize(x.intQuery("h", 24), x.intQuery("w", 80));
            }
            x.noContent();
        });
        r.add("GET", "/v1/execs/{id}", x -> {
            Execs.Exec e = exec(x.path("id"));
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("ID", e.id());
            m.put("ContainerID", e.sandboxId());
            m.put("Running", e.running());
            m.put("ExitCode", e.exitStatus().map(s -> (Object) s.exitCode()).orElse(null));
            x.json(m);
        });
    }

    private Execs.Exec exec(String id) {
        return execs.find(id).orElseThrow(() -> KilnException.notFound("no such exec: " + id));
    }

    private RunningProcess startedExec(String id) {
        return exec(id).process().orElseThrow(() -> KilnException.conflict("exec " + id + " has not been started"));
    }

    private SandboxTask running(String ref) {
        Sandbox s = sandboxes.get(ref);
        if (!s.running()) {
            throw KilnException.conflict("sandbox " + s.name() + " is not running");
        }
        return sandboxes.task(s);
    }

    /**
     * Proxies a process's frames from its shim to the client until the exit frame, which is sent only after
     * {@code beforeExit} (a --rm sandbox is removed first, so the client may reuse its name at once, as Docker's).
     * {@code beforeExit} returns the exit code the engine recorded (-1: none), sent when the shim died unrecorded.
     */
    private static void stream(Exchange x, RunningProcess shim, java.util.function.IntSupplier beforeExit)
            throws IOException {
        try (AttachConnection c = shim.attach()) {
            x.status(200);
            x.contentType("application/vnd.kiln.stream");
            OutputStream out = x.out();
            out.flush();
            while (true) {
                AttachConnection.Frame raw = c.read();
                if (raw == null) {
                    int code;
                    try {
                        code = shim.await(Duration.ofSeconds(5)).map(s -> s.exitCode()).orElse(255);
                    } catch (RunningProcess.Gone e) {
                        code = -1; // the engine ends the run (killing what is left) and records its code
                    }
                    int recorded = beforeExit.getAsInt();
                    StreamFrame.exit(code >= 0 ? code : recorded >= 0 ? recorded : 255).writeTo(out);
                    break;
                }
                StreamFrame f = new StreamFrame(raw.type(), raw.payload());
                if (f.type() == StreamFrame.EXIT) {
                    beforeExit.getAsInt();
                }
                f.writeTo(out);
                out.flush();
                if (f.type() == StreamFrame.EXIT) {
                    break;
                }
            }
            out.flush();
        }
    }

    /** Feeds the request body to the process's stdin as it comes (no deadline); its end closes stdin. */
    private static void stdin(Exchange x, RunningProcess shim) throws IOException {
        try (AttachConnection c = shim.attach(); InputStream in = x.streamedBody()) {
            Thread drain = Thread.ofVirtual().start(() -> {
                try {
                    while (c.read() != null) {
                        // this connection only writes; output reaches the client through its attach stream
                    }
                } catch (IOException ignored) {
                    // closed below
                }
            });
            byte[] buf = new byte[8192];
            int n;
            while ((n = in.read(buf)) > 0) {
                c.stdin(java.util.Arrays.copyOf(buf, n));
            }
            c.closeStdin();
            drain.interrupt();
        }
        x.noContent();
    }

    private void logs(Exchange x) throws IOException {
        Sandbox s = sandboxes.get(x.path("id"));
        if (!x.flag("boot") && "none".equals(s.config().settings().logDriver())) {
            throw KilnException.invalid("sandbox " + s.name() + " keeps no logs (--log-driver none)");
        }
        if (x.flag("boot")) {
            bootLog(x, sandboxes.bootLog(s));
            return;
        }
        boolean timestamps = x.flag("timestamps");
        String tailParam = x.query("tail", "all");
        int tail = tailParam.equals("all") ? -1 : x.intQuery("tail", -1);
        Instant since = x.query("since") == null ? null : Instant.ofEpochSecond(x.longQuery("since", 0));
        x.status(200);
        x.contentType("application/vnd.kiln.stream");
        OutputStream out = x.out();
        LogReader reader = new LogReader(sandboxes.logFile(s));
        LogReader.Sink sink = rec -> {
            if (since != null && rec.time().isBefore(since)) {
                return;
            }
            byte[] data = rec.data();
            if (timestamps) {
                byte[] ts = (rec.time().toString() + " ").getBytes(StandardCharsets.US_ASCII);
                byte[] joined = new byte[ts.length + data.length];
                System.arraycopy(ts, 0, joined, 0, ts.length);
                System.arraycopy(data, 0, joined, ts.length, data.length);
                data = joined;
            }
            new StreamFrame(rec.stream().equals("stderr") ? StreamFrame.STDERR : StreamFrame.STDOUT, data)
                    .writeTo(out);
            out.flush();
        };
        if (x.flag("follow") && sandboxes.get(s.id()).running()) {
            reader.follow(tail, sink, sandboxes.task(s));
        } else {
            reader.read(tail, sink);
        }
        out.flush();
    }

    /** The kernel console as it is now (no follow): one STDOUT frame per chunk; empty before the first boot. */
    private static void bootLog(Exchange x, java.util.Optional<java.nio.file.Path> log) throws IOException {
        x.status(200);
        x.contentType("application/vnd.kiln.stream");
        OutputStream out = x.out();
        java.nio.file.Path file = log.orElse(null);
        if (file != null && java.nio.file.Files.isRegularFile(file)) {
            try (var in = java.nio.file.Files.newInputStream(file)) {
                byte[] buf = new byte[65536];
                for (int n; (n = in.read(buf)) > 0; ) {
                    new StreamFrame(StreamFrame.STDOUT, java.util.Arrays.copyOf(buf, n)).writeTo(out);
                }
            }
        }
        out.flush();
    }

    private void stats(Exchange x) throws InterruptedException {
        Sandbox s = sandboxes.get(x.path("id"));
        SandboxStats first = sandboxes.stats(s.id());
        long t0 = System.nanoTime();
        Thread.sleep(500);
        SandboxStats second = sandboxes.stats(s.id());
        double cpuPercent = 100.0 * (second.cpuNanos() - first.cpuNanos()) / (System.nanoTime() - t0);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", s.id());
        m.put("name", s.name());
        m.put("cpuPercent", cpuPercent);
        m.put("memoryBytes", second.memoryBytes());
        m.put("memoryLimitBytes", second.memoryLimitBytes());
        m.put("pids", second.pids());
        x.json(m);
    }
}
