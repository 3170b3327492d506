package dev.kiln.api.docker;

import dev.kiln.KilnException;
import dev.kiln.api.ArchiveRoutes;
import dev.kiln.api.Exchange;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Sandbox;
import dev.kiln.engine.SandboxConfig;
import dev.kiln.engine.Sandboxes;
import dev.kiln.engine.Signals;
import dev.kiln.isolation.SandboxStats;
import dev.kiln.isolation.AttachConnection;
import dev.kiln.isolation.LogReader;
import dev.kiln.isolation.SandboxTask;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/** Docker's container endpoints over the engine's sandboxes (exec lives in {@link DockerExecs}). */
final class DockerContainers {

    /** How long a parked attach waits for its start. */
    private static final long ATTACH_START_WAIT_MINUTES = 10;

    private final Engine engine;
    private final Sandboxes sandboxes;
    private final Exits exits;
    private final AttachRendezvous rendezvous;

    DockerContainers(Engine engine, Exits exits) {
        this.engine = engine;
        this.sandboxes = engine.sandboxes();
        this.exits = exits;
        this.rendezvous = new AttachRendezvous(sandboxes);
    }

    void register(Routes r) {
        r.add("POST", "/containers/create", this::create);
        r.add("GET", "/containers/json", this::list);
        r.add("POST", "/containers/prune", x -> {
            if (!Filters.parse(x.query("filters")).isEmpty()) {
                throw KilnException.invalid("kiln does not support filters on container prune yet");
            }
            Sandboxes.Pruned pruned = sandboxes.prune();
            x.json(Map.of("ContainersDeleted", pruned.removed(), "SpaceReclaimed", pruned.spaceReclaimed()));
        });
        r.add("GET", "/containers/{id}/json", x -> x.json(ContainerView.inspect(engine, sandbox(x.path("id")))));
        r.add("POST", "/containers/{id}/start", this::start);
        r.add("POST", "/containers/{id}/stop", x -> {
            Sandbox s = sandbox(x.path("id"));
            if (x.query("signal") != null) {
                throw KilnException.invalid("kiln does not support stop --signal yet (use kill --signal)");
            }
            if (!s.running() && !sandboxes.restarting(s)) { // a stop during a policy's back-off cancels it
                x.status(304);
                return;
            }
            sandboxes.stop(s.id(), dev.kiln.api.RunSettingsView.stopTimeout(x.intQuery("t", dev.kiln.api.RunSettingsView.stopSeconds(s))));
            x.noContent();
        });
        r.add("POST", "/containers/{id}/kill", x -> {
            Sandbox s = sandbox(x.path("id"));
            if (!s.running()) {
                throw KilnException.conflict("Cannot kill container: " + x.path("id") + ": Container " + s.id()
                        + " is not running");
            }
            sandboxes.kill(s.id(), Signals.number(x.query("signal", "KILL")));
            x.noContent();
        });
        r.add("POST", "/containers/{id}/update", this::update);
        r.add("GET", "/containers/{id}/export", x -> dev.kiln.api.SandboxRoutes.export(engine, x,
                sandbox(x.path("id")).id()));
        r.add("POST", "/containers/{id}/pause", x -> {
            sandboxes.pause(sandbox(x.path("id")).id());
            x.noContent();
        });
        r.add("POST", "/containers/{id}/unpause", x -> {
            sandboxes.unpause(sandbox(x.path("id")).id());
            x.noContent();
        });
        r.add("POST", "/containers/{id}/restart", x -> {
            Sandbox s = sandbox(x.path("id"));
            sandboxes.restart(s.id(), dev.kiln.api.RunSettingsView.stopTimeout(x.intQuery("t", dev.kiln.api.RunSettingsView.stopSeconds(s))));
            x.noContent();
        });
        r.add("POST", "/containers/{id}/wait", this::await);
        r.add("DELETE", "/containers/{id}", x -> {
            Sandbox s = sandbox(x.path("id"));
            if (s.running() && !x.flag("force")) {
                throw KilnException.conflict("You cannot remove a running container " + s.id()
                        + ". Stop the container before attempting removal or force remove");
            }
            sandboxes.remove(s.id(), x.flag("force"), x.flag("v"));
            x.noContent();
        });
        r.add("GET", "/containers/{id}/logs", this::logs);
        r.add("POST", "/containers/{id}/attach", this::attach);
        r.add("POST", "/containers/{id}/resize", x -> {
            Sandbox s = sandbox(x.path("id"));
            if (s.running()) {
                try (AttachConnection c = sandboxes.task(s).attach()) {
                    c.resize(x.intQuery("h", 24), x.intQuery("w", 80));
                } catch (IOException e) {
                    // exited meanwhile: nothing to resize
                }
            }
            x.status(200);
        });
        r.add("GET", "/containers/{id}/top", this::top);
        r.add("GET", "/containers/{id}/stats", this::stats);
        r.add("POST", "/containers/{id}/rename", x -> {
            Sandbox s = sandbox(x.path("id"));
            String name = x.query("name", "");
            if (name.isEmpty()) {
                throw KilnException.invalid("name is required");
            }
            conflictIfTaken(name.startsWith("/") ? name.substring(1) : name);
            sandboxes.rename(s.id(), name.startsWith("/") ? name.substring(1) : name);
            x.noContent();
        });
        // docker cp: kiln's own archive handlers, with Docker's "No such container"
        r.add("GET", "/containers/{id}/archive", x -> ArchiveRoutes.get(x, engine, sandbox(x.path("id")).id()));
        r.add("PUT", "/containers/{id}/archive", x -> ArchiveRoutes.put(x, engine, sandbox(x.path("id")).id()));
        new DockerExecs(engine, this).register(r);
    }

    /** The sandbox for a Docker container reference, or Docker's 404. */
    Sandbox sandbox(String ref) {
        try {
            return sandboxes.get(ref);
        } catch (KilnException e) {
            if (e.kind() == KilnException.Kind.NOT_FOUND) {
                throw KilnException.notFound("No such container: " + ref);
            }
            throw e;
        }
    }

    // ---- create, list ----

    private void create(Exchange x) {
        SandboxConfig req = CreateTranslator.translate(x.body(ContainerCreateBody.class), x.query("name"),
                x.query("platform"), engine.isolators());
        if (req.name() != null) {
            conflictIfTaken(req.name());
        }
        try {
            engine.images().resolve(req.image());
        } catch (KilnException e) {
            if (e.kind() == KilnException.Kind.NOT_FOUND) {
                throw KilnException.notFound("No such image: " + req.image());
            }
            throw e;
        }
        Sandbox s = sandboxes.create(req);
        x.json(201, Map.of("Id", s.id(), "Warnings", List.of()));
    }

    private void conflictIfTaken(String name) {
        sandboxes.list().stream().filter(s -> s.name().equals(name)).findFirst().ifPresent(s -> {
            throw KilnException.conflict("Conflict. The container name \"/" + name + "\" is already in use by "
                    + "container \"" + s.id() + "\". You have to remove (or rename) that container to be able to "
                    + "reuse that name.");
        });
    }

    private void list(Exchange x) {
        Map<String, List<String>> f = Filters.parse(x.query("filters"));
        Filters.only(f, List.of("label", "name", "status", "id", "ancestor", "isolation"));
        boolean all = x.flag("all") || f.containsKey("status");
        int limit = x.intQuery("limit", -1);
        List<Map<String, Object>> rows = new ArrayList<>();
        List<Sandbox> sorted = new ArrayList<>(sandboxes.list());
        sorted.sort(Comparator.comparingLong(Sandbox::created).reversed());
        for (Sandbox s : sorted) {
            boolean restarting = sandboxes.restarting(s); // Docker lists it as running, status=restarting
            if (!all && !s.running() && !restarting) {
                continue;
            }
            if (!Filters.any(f, "status", v -> v.equals(restarting ? "restarting" : ContainerView.status(s)))
                    || !Filters.any(f, "id", v -> s.id().startsWith(v))
                    || !Filters.any(f, "name", v -> Pattern.compile(v.startsWith("/") ? v.substring(1) : v)
                    .matcher(s.name()).find())
                    || !Filters.all(f, "label", v -> DockerImages.labelMatches(v, ContainerView.labels(s)))
                    || !Filters.any(f, "isolation", v -> v.equals(s.isolation()))
                    || !Filters.any(f, "ancestor", v -> ancestor(v, s))) {
                continue;
            }
            rows.add(ContainerView.row(engine, s));
            if (limit > 0 && rows.size() >= limit) {
                break;
            }
        }
        x.json(rows);
    }

    private boolean ancestor(String image, Sandbox s) {
        if (image.equals(s.image()) || s.imageId().startsWith(image) || s.imageId().equals("sha256:" + image)) {
            return true;
        }
        try {
            return engine.images().resolve(image).id().toString().equals(s.imageId());
        } catch (KilnException e) {
            return false;
        }
    }

    /** Docker's UpdateConfig: the resources kiln limits, and RestartPolicy (an empty Name: unchanged). */
    @com.fasterxml.jackson.databind.annotation.JsonNaming(
            com.fasterxml.jackson.databind.PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @com.fasterxml.jackson.annotation.JsonIgnoreProperties(ignoreUnknown = true)
    record UpdateBody(long nanoCpus, long memory, Long pidsLimit, ContainerCreateBody.RestartPolicy restartPolicy,
                      long cpuShares, long cpuQuota, long cpuPeriod, String cpusetCpus, String cpusetMems,
                      long memoryReservation, long memorySwap, long blkioWeight, long kernelMemory) {
    }

    private void update(Exchange x) {
        Sandbox s = sandbox(x.path("id"));
        UpdateBody b = x.body(UpdateBody.class);
        List<String> refused = new ArrayList<>();
        if (b.cpuShares() > 0 || b.cpuQuota() > 0 || b.cpuPeriod() > 0 || CreateTranslator.text(b.cpusetCpus()) != null
                || CreateTranslator.text(b.cpusetMems()) != null) {
            refused.add("--cpu-shares, --cpu-quota, --cpu-period and --cpuset-* (use --cpus)");
        }
        if (b.memoryReservation() > 0 || b.memorySwap() > 0 || b.kernelMemory() > 0) {
            refused.add("--memory-reservation, --memory-swap and --kernel-memory (use --memory)");
        }
        if (b.blkioWeight() > 0) {
            refused.add("--blkio-weight");
        }
        if (!refused.isEmpty()) {
            throw KilnException.invalid("kiln does not support updating " + String.join(", ", refused) + " yet");
        }
        String policy = b.restartPolicy() == null ? null : CreateTranslator.text(b.restartPolicy().name());
        sandboxes.update(s.id(), new dev.kiln.engine.SandboxUpdate(b.nanoCpus(), b.memory(), b.pidsLimit(),
                policy == null ? null : new dev.kiln.engine.RestartPolicy(policy,
                        (int) Math.min(Integer.MAX_VALUE, b.restartPolicy().maximumRetryCount()))));
        x.json(Map.of("Warnings", List.of()));
    }

    // ---- start, wait ----

    private void start(Exchange x) {
        Sandbox s = sandbox(x.path("id"));
        if (s.paused()) {
            throw KilnException.conflict("cannot start a paused container, try unpause instead");
        }
        if (s.running()) {
            x.status(304);
            return;
        }
        if (x.query("checkpoint", null) != null) { // ?checkpoint=NAME: restored (docs/checkpoint.md), no attach rendezvous
            sandboxes.start(s.id(), false, x.query("checkpoint", null));
            x.noContent();
            return;
        }
        try {
            if (!rendezvous.start(s.id())) {
                x.status(304);
                return;
            }
        } catch (KilnException e) {
            if (s.config().autoRemove()) {
                try {
                    sandboxes.remove(s.id(), true);
                } catch (RuntimeException ignored) {
                    // reported below is the start's failure
                }
            }
            throw e;
        }
        x.noContent();
    }

    /**
     * Docker's wait: the 200 and headers go out as soon as the wait is registered (the docker CLI starts the
     * container only then), the body when the condition is met.
     */
    private void await(Exchange x) throws Exception {
        Sandbox s = sandbox(x.path("id"));
        String condition = x.query("condition", "not-running");
        CompletableFuture<Integer> result = exits.register(s.id(), condition);
        try {
            Integer now = null;
            if (condition.isEmpty() || condition.equals("not-running")) {
                Sandbox current = sandboxes.get(s.id());
                if (!current.running()) {
                    now = current.exitCode() == null ? 0 : current.exitCode();
                }
            }
            x.status(200);
            x.contentType("application/json");
            OutputStream out = x.out();
            out.flush();
            int code = now != null ? now : result.get();
            Map<String, Object> body = new LinkedHashMap<>();
            body.put("StatusCode", code);
            body.put("Error", null);
            dev.kiln.api.JsonLines.write(out, DockerApi.JSON, body);
        } finally {
            exits.cancel(result);
        }
    }

    // ---- attach ----

    /**
     * Docker's attach: with {@code logs=1} what the sandbox wrote so far comes first, with {@code stream=1} then its
     * live output (and stdin, ending on the {@code detachKeys}); {@code stream=0} ends after the logs.
     */
    private void attach(Exchange x) throws Exception {
        Sandbox s = sandbox(x.path("id"));
        boolean logs = x.flag("logs");
        StreamCopy.Options o = new StreamCopy.Options(s.config().tty(), x.flag("stdout"), x.flag("stderr"),
                x.flag("stdin") && s.config().openStdin());
        DetachKeys keys = DetachKeys.parse(x.query("detachKeys"));
        if (!x.flag("stream")) {
            if (HijackedConnection.requested(x)) {
                HijackedConnection.upgrade(x, o.contentType(), client -> {
                    if (logs) {
                        replay(s, o, client::write);
                    }
                });
                return;
            }
            x.status(200);
            x.contentType(o.contentType());
            OutputStream out = x.out();
            if (logs) {
                replay(s, o, out::write);
            }
            out.flush();
            return;
        }
        AttachRendezvous.Parked parked = rendezvous.park(s.id());
        AttachConnection direct = parked == null ? sandboxes.task(sandboxes.get(s.id())).attach() : null;
        if (HijackedConnection.requested(x)) {
            HijackedConnection.upgrade(x, o.contentType(), client -> {
                if (logs) {
                    replay(s, o, client::write);
                }
                try (AttachConnection shim = direct != null ? direct : connect(s.id(), parked)) {
                    if (shim != null) {
                        StreamCopy.hijacked(client, shim, o, keys);
                    }
                }
            });
            return;
        }
        try (AttachConnection shim = direct != null ? direct : connect(s.id(), parked)) {
            x.status(200);
            x.contentType(o.contentType());
            OutputStream out = x.out();
            if (logs) {
                replay(s, o, out::write);
            }
            out.flush();
            if (shim != null) {
                StreamCopy.body(out, shim, o);
            }
        }
    }

    /** The sandbox's output so far, from its log, as the attach stream carries it (framed unless a TTY). */
    private void replay(Sandbox s, StreamCopy.Options o, StreamCopy.Sink sink) throws IOException {
        new LogReader(sandboxes.logFile(s)).read(-1, rec -> {
            boolean isErr = rec.stream().equals("stderr");
            if ((isErr && !o.stderr()) || (!isErr && !o.stdout()) || rec.data().length == 0) {
                return;
            }
            byte[] data = o.tty() ? rec.data() : StreamCopy.frame(isErr ? 2 : 1, rec.data());
            sink.write(data, 0, data.length);
        });
    }

    /** Waits for the parked attach's start and connects to the shim; null if no start came or it failed. */
    private AttachConnection connect(String id, AttachRendezvous.Parked parked) {
        try {
            SandboxTask task = parked.task().get(ATTACH_START_WAIT_MINUTES, TimeUnit.MINUTES);
            AttachConnection c = task.attach();
            parked.connected().complete(null);
            return c;
        } catch (Exception e) {
            rendezvous.abandon(id, parked);
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            return null;
        }
    }

    // ---- logs ----

    private void logs(Exchange x) throws IOException {
        Sandbox s = sandbox(x.path("id"));
        if ("none".equals(s.config().settings().logDriver())) {
            throw KilnException.invalid("configured logging driver does not support reading (--log-driver none)");
        }
        boolean stdout = x.flag("stdout");
        boolean stderr = x.flag("stderr");
        if (!stdout && !stderr) {
            throw KilnException.invalid("Bad parameters: you must choose at least one stream");
        }
        boolean timestamps = x.flag("timestamps");
        String tailParam = x.query("tail", "all");
        int tail = tailParam.equals("all") || tailParam.isEmpty() ? -1 : x.intQuery("tail", -1);
        Instant since = Times.parse(x.query("since"));
        Instant until = Times.parse(x.query("until"));
        boolean tty = s.config().tty();
        x.status(200);
        x.contentType(tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream");
        OutputStream out = x.out();
        out.flush();
        LogReader.Sink sink = rec -> {
            boolean isErr = rec.stream().equals("stderr");
            if ((isErr && !stderr) || (!isErr && !stdout)) {
                return;
            }
            if ((since != null && rec.time().isBefore(since)) || (until != null && rec.time().isAfter(until))) {
                return;
            }
            byte[] data = rec.data();
            if (timestamps) {
                byte[] ts = (Times.rfc3339Nano(rec.time()) + " ").getBytes(StandardCharsets.US_ASCII);
                byte[] joined = new byte[ts.length + data.length];
                System.arraycopy(ts, 0, joined, 0, ts.length);
                System.arraycopy(data, 0, joined, ts.length, data.length);
                data = joined;
            }
            out.write(tty ? data : StreamCopy.frame(isErr ? 2 : 1, data));
            out.flush();
        };
        LogReader reader = new LogReader(sandboxes.logFile(s));
        if (x.flag("follow") && sandboxes.get(s.id()).running()) {
            reader.follow(tail, sink, sandboxes.task(s));
        } else {
            reader.read(tail, sink);
        }
    }

    // ---- top, stats ----

    private void top(Exchange x) {
        Sandbox s = sandbox(x.path("id"));
        if (!s.running()) {
            throw KilnException.conflict("Container " + s.id() + " is not running");
        }
        List<String> lines = sandboxes.top(s.id()).lines().filter(l -> !l.isBlank()).toList();
        List<String> titles = lines.isEmpty() ? List.of() : List.of(lines.getFirst().trim().split("\\s+"));
        List<List<String>> processes = new ArrayList<>();
        for (String line : lines.subList(Math.min(1, lines.size()), lines.size())) {
            String[] cols = line.trim().split("\\s+", Math.max(1, titles.size()));
            processes.add(List.of(cols));
        }
        x.json(Map.of("Titles", titles, "Processes", processes));
    }

    private void stats(Exchange x) throws Exception {
        Sandbox s = sandbox(x.path("id"));
        boolean stream = x.query("stream") == null || x.flag("stream");
        boolean oneShot = x.flag("one-shot");
        x.status(200);
        x.contentType("application/json");
        OutputStream out = x.out();
        Map<String, Object> previous = sample(s, null);
        if (!oneShot) {
            Thread.sleep(stream ? 0 : 1000);
        }
        do {
            Map<String, Object> current = sample(s, previous);
            dev.kiln.api.JsonLines.write(out, DockerApi.JSON, current);
            previous = current;
            if (stream) {
                Thread.sleep(1000);
            }
        } while (stream && sandboxes.get(s.id()).running());
    }

    @SuppressWarnings("unchecked")
    private Map<String, Object> sample(Sandbox s, Map<String, Object> previous) {
        SandboxStats st;
        try {
            st = sandboxes.get(s.id()).running() ? sandboxes.stats(s.id()) : new SandboxStats(0, 0, 0, 0);
        } catch (KilnException e) {
            st = new SandboxStats(0, 0, 0, 0);
        }
        int cpus = Runtime.getRuntime().availableProcessors();
        Map<String, Object> cpu = new LinkedHashMap<>();
        cpu.put("cpu_usage", Map.of("total_usage", st.cpuNanos(), "usage_in_kernelmode", 0, "usage_in_usermode", 0));
        cpu.put("system_cpu_usage", systemCpuNanos());
        cpu.put("online_cpus", cpus);
        cpu.put("throttling_data", Map.of("periods", 0, "throttled_periods", 0, "throttled_time", 0));
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("read", Instant.now().toString());
        m.put("preread", previous == null ? ContainerView.ZERO_TIME : previous.get("read"));
        m.put("pids_stats", Map.of("current", st.pids()));
        m.put("num_procs", 0);
        m.put("cpu_stats", cpu);
        m.put("precpu_stats", previous == null ? Map.of("cpu_usage", Map.of("total_usage", 0),
                "throttling_data", Map.of()) : previous.get("cpu_stats"));
        m.put("memory_stats", Map.of("usage", st.memoryBytes(), "limit", st.memoryLimitBytes() > 0
                ? st.memoryLimitBytes() : hostMemory(), "stats", Map.of()));
        Map<String, Object> networks = new LinkedHashMap<>(); // by interface, as Docker's (none: no key)
        sandboxes.network(s).ifPresent(a -> a.counters().ifPresent(c -> networks.put(a.ifname(), c)));
        sandboxes.joined(s).forEach(j -> j.attachment().ifPresent(a -> a.counters()
                .ifPresent(c -> networks.put(a.ifname(), c))));
        if (!networks.isEmpty()) {
            m.put("networks", networks);
        }
        m.put("blkio_stats", Map.of());
        m.put("storage_stats", Map.of());
        m.put("name", "/" + s.name());
        m.put("id", s.id());
        return m;
    }

    private static long systemCpuNanos() {
        try {
            String cpu = Files.readAllLines(Path.of("/proc/stat")).getFirst();
            long ticks = 0;
            for (String part : cpu.substring(3).trim().split("\\s+")) {
                ticks += Long.parseLong(part);
            }
            return ticks * 10_000_000L; // USER_HZ = 100
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    private static long hostMemory() {
        return Runtime.getRuntime().maxMemory() > 0 ? com.sun.management.OperatingSystemMXBean.class.cast(
                java.lang.management.ManagementFactory.getOperatingSystemMXBean()).getTotalMemorySize() : 0;
    }
}
