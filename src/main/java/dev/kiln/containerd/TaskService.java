package dev.kiln.containerd;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.Any;
import com.google.protobuf.Empty;
import com.google.protobuf.Message;
import com.google.protobuf.Timestamp;
import dev.kiln.containerd.wire.events.TaskCreate;
import dev.kiln.containerd.wire.events.TaskDelete;
import dev.kiln.containerd.wire.events.TaskExecAdded;
import dev.kiln.containerd.wire.events.TaskExecStarted;
import dev.kiln.containerd.wire.events.TaskExit;
import dev.kiln.containerd.wire.events.TaskIO;
import dev.kiln.containerd.wire.events.TaskStart;
import dev.kiln.containerd.wire.options.Options;
import dev.kiln.containerd.wire.task.*;
import dev.kiln.containerd.wire.types.ProcessInfo;
import dev.kiln.containerd.wire.types.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;

/**
 * containerd's {@code containerd.task.v2.Task} service for the tasks of this shim, each run by an OCI runtime (runc
 * for kiln's container isolation, runsc for gvisor) on the bundle containerd prepared: its config.json as written,
 * its rootfs as containerd's snapshotter mounted it. Semantics follow containerd's runc shim: an empty exec_id is
 * the init, exit codes of signalled processes are 128 + the signal, Shutdown ends the shim once no task is left.
 */
final class TaskService implements TtrpcServer.Service {

    static final String NAME = "containerd.task.v2.Task";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A task: its runtime, bundle, init process and execs. */
    private record Task(String id, Path bundle, KilnRuntime runtime, ShimProcess init,
                        Map<String, ShimProcess> execs) {}

    private final Map<String, Task> tasks = new ConcurrentHashMap<>();
    /**
     * The tasks this shim paused (Pause, until Resume), as containerd's runc shim keeps its init's state itself: State
     * is asked after every Start and by CRI's CreateContainer, and asking the runtime ({@code runc state}, a process
     * start) took 35-75 ms of each.
     */
    private final Set<String> paused = ConcurrentHashMap.newKeySet();
    private final EventPublisher events;
    private final ShimLog log;
    private final Runnable shutdown;
    private final OomWatch oom;

    /** The vm isolation's tasks (VmTasks: a microVM on the bundle's rootfs): every request for one goes there. */
    private final VmTasks vms;

    TaskService(EventPublisher events, ShimLog log, Runnable shutdown) {
        this.vms = new VmTasks(events, log);
        this.events = events;
        this.log = log;
        this.shutdown = shutdown;
        this.oom = new OomWatch(events, log);
    }

    @Override
    public byte[] call(String method, byte[] p) throws Exception {
        if (!method.equals("Create") && !method.equals("Shutdown") && vms.owns(VmTasks.idOf(p))) return vms.call(method, p);
        Message out = switch (method) {
            case "Create" -> create(CreateTaskRequest.parseFrom(p));
            case "Start" -> start(StartRequest.parseFrom(p));
            case "Wait" -> waitFor(WaitRequest.parseFrom(p));
            case "Kill" -> kill(KillRequest.parseFrom(p));
            case "Delete" -> delete(DeleteRequest.parseFrom(p));
            case "State" -> state(StateRequest.parseFrom(p));
            case "Pids" -> pids(PidsRequest.parseFrom(p));
            case "Exec" -> exec(ExecProcessRequest.parseFrom(p));
            case "ResizePty" -> resize(ResizePtyRequest.parseFrom(p));
            case "CloseIO" -> Empty.getDefaultInstance();   // stdin is the client's fifo itself (or its copier)
            case "Connect" -> connect(ConnectRequest.parseFrom(p));
            case "Shutdown" -> shutdown(ShutdownRequest.parseFrom(p));
            case "Stats" -> stats(StatsRequest.parseFrom(p));
            case "Update" -> update(UpdateTaskRequest.parseFrom(p));
            case "Pause" -> freeze(PauseRequest.parseFrom(p).getId(), "pause");
            case "Resume" -> freeze(ResumeRequest.parseFrom(p).getId(), "resume");
            case "Checkpoint" -> throw TtrpcServer.RpcError.unimplemented("checkpoint is not implemented by kiln");
            default -> throw TtrpcServer.RpcError.unimplemented("method " + method + " is not implemented");
        };
        return out.toByteArray();
    }

    private CreateTaskResponse create(CreateTaskRequest r) throws IOException, InterruptedException {
        if (tasks.containsKey(r.getId())) throw TtrpcServer.RpcError.alreadyExists("task " + r.getId() + " exists");
        if (!r.getCheckpoint().isEmpty()) {
            throw TtrpcServer.RpcError.unimplemented("restoring a checkpoint is not implemented by kiln");
        }
        long t0 = System.nanoTime();
        Path bundle = Path.of(r.getBundle());
        JsonNode spec = JSON.readTree(bundle.resolve("config.json").toFile());
        String configPath = null;
        if (r.hasOptions() && r.getOptions().getTypeUrl().endsWith("runtimeoptions.v1.Options")) {
            configPath = Options.parseFrom(r.getOptions().getValue()).getConfigPath();
        }
        KilnRuntime runtime = KilnRuntime.choose(spec, configPath, bundle);
        PodSizing.apply(runtime, spec, bundle);
        long t1 = System.nanoTime();
        mountRootfs(r, bundle);
        long t2 = System.nanoTime();
        Files.createDirectories(runtime.root());
        Files.writeString(bundle.resolve("kiln-isolation"), runtime.record());
        if (runtime.isolation().equals("vm")) return vms.create(r, spec, bundle);
        ShimProcess init = new ShimProcess("", r.getTerminal(), r.getStdin(), r.getStdout(), r.getStderr());
        if (GvisorPod.member(runtime, spec)) init.joinSandbox();
        Task task = new Task(r.getId(), bundle, runtime, init, new ConcurrentHashMap<>());
        Path pidFile = bundle.resolve("init.pid");
        java.util.List<String> cmd = runtime.command("create", "--bundle", bundle.toString(), "--pid-file",
                pidFile.toString());
        Path console = bundle.resolve("console.sock");
        if (r.getTerminal()) {
            cmd.add(cmd.size(), "--console-socket");
            cmd.add(console.toString());
        }
        cmd.add(r.getId());
        long t3 = System.nanoTime();
        int pid = init.launch(cmd, pidFile, console, bundle.resolve("runtime.log"), () -> exited(task, init));
        long t4 = System.nanoTime();
        log.debug("create " + r.getId() + ": spec " + (t1 - t0) / 1_000_000 + " ms, mount " + (t2 - t1) / 1_000_000
                + " ms, " + Path.of(cmd.getFirst()).getFileName() + " create " + (t4 - t3) / 1_000_000 + " ms (its process start "
                + init.spawnMs + " ms)");
        tasks.put(r.getId(), task);
        if (!init.joinsSandbox()) oom.watch(r.getId(), pid);
        log.line("created " + r.getId() + " (" + runtime.isolation() + ", pid " + pid + ")");
        events.publish("/tasks/create", TaskCreate.newBuilder().setContainerId(r.getId()).setBundle(r.getBundle())
                .addAllRootfs(r.getRootfsList()).setIo(TaskIO.newBuilder().setStdin(r.getStdin())
                        .setStdout(r.getStdout()).setStderr(r.getStderr()).setTerminal(r.getTerminal()))
                .setPid(pid).build());
        return CreateTaskResponse.newBuilder().setPid(pid).build();
    }

    /** containerd passes the snapshot as mounts for the shim to mount on BUNDLE/rootfs (ctr, CRI) unless empty. */
    private void mountRootfs(CreateTaskRequest r, Path bundle) throws IOException, InterruptedException {
        Path rootfs = bundle.resolve("rootfs");
        for (var m : r.getRootfsList()) {
            Files.createDirectories(rootfs);
            // mount(2) itself, as containerd's runc shim does: the mount(8) process it replaces cost 15-300 ms of a
            // pod's start on a loaded node; mount(8) still runs when the call is refused, for its error message
            if (RootfsMount.of(m.getType(), m.getOptionsList()).mount(m.getSource(), rootfs) == 0) continue;
            java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of("mount", "-t", m.getType()));
            if (m.getOptionsCount() > 0) {
                cmd.add("-o");
                cmd.add(String.join(",", m.getOptionsList()));
            }
            cmd.add(m.getSource());
            cmd.add(rootfs.toString());
            Process p = Children.start(new ProcessBuilder(cmd).redirectErrorStream(true));
            String out = new String(p.getInputStream().readAllBytes()).strip();
            if (p.waitFor() != 0) {
                throw TtrpcServer.RpcError.precondition("cannot mount the rootfs of " + r.getId() + ": " + out);
            }
        }
    }

    private void exited(Task task, ShimProcess process) {
        ShimProcess.Exit exit = process.exit.join();
        if (process.execId.isEmpty()) oom.last(task.id());   // a TaskOOM goes out before its TaskExit
        events.publish("/tasks/exit", TaskExit.newBuilder().setContainerId(task.id())
                .setId(process.execId.isEmpty() ? task.id() : process.execId).setPid(process.pid())
                .setExitStatus(exit.status()).setExitedAt(time(exit.at())).build());
    }

    private StartResponse start(StartRequest r) throws IOException, InterruptedException {
        Task task = task(r.getId());
        if (r.getExecId().isEmpty()) {
            if (task.init().joinsSandbox()) GvisorPod.start(task.runtime(), task.id(), task.init(),
                    () -> exited(task, task.init()));
            else run(task.runtime().command("start", task.id()), "start " + task.id());
            task.init().started();
            events.publish("/tasks/start", TaskStart.newBuilder().setContainerId(task.id())
                    .setPid(task.init().pid()).build());
            Spare.taskStarted();   // a claimed spare's next spare may start after its pod's first container
            return StartResponse.newBuilder().setPid(task.init().pid()).build();
        }
        ShimProcess exec = process(task, r.getExecId());
        Path dir = task.bundle().resolve("exec-" + Integer.toHexString(r.getExecId().hashCode()));
        Path pidFile = dir.resolve("pid");
        java.util.List<String> cmd = task.runtime().command("exec", "--detach", "--pid-file", pidFile.toString(),
                "--process", dir.resolve("process.json").toString());
        Path console = dir.resolve("console.sock");
        if (exec.terminal) {
            cmd.add("--console-socket");
            cmd.add(console.toString());
        }
        cmd.add(task.id());
        int pid = exec.launch(cmd, pidFile, console, task.bundle().resolve("runtime.log"), () -> exited(task, exec));
        exec.started();
        events.publish("/tasks/exec-started", TaskExecStarted.newBuilder().setContainerId(task.id())
                .setExecId(r.getExecId()).setPid(pid).build());
        return StartResponse.newBuilder().setPid(pid).build();
    }

    private Empty exec(ExecProcessRequest r) throws IOException {
        Task task = task(r.getId());
        if (task.execs().containsKey(r.getExecId())) {
            throw TtrpcServer.RpcError.alreadyExists("exec " + r.getExecId() + " exists in " + r.getId());
        }
        if (!r.getSpec().getTypeUrl().endsWith("runtime-spec/1/Process")) {
            throw TtrpcServer.RpcError.invalid("exec spec of type " + r.getSpec().getTypeUrl() + " is not an OCI Process");
        }
        Path dir = task.bundle().resolve("exec-" + Integer.toHexString(r.getExecId().hashCode()));
        Files.createDirectories(dir);
        // the OCI Process arrives as JSON (containerd's typeurl registration), what runc exec --process reads
        Files.write(dir.resolve("process.json"), r.getSpec().getValue().toByteArray());
        task.execs().put(r.getExecId(), new ShimProcess(r.getExecId(), r.getTerminal(), r.getStdin(),
                r.getStdout(), r.getStderr()));
        events.publish("/tasks/exec-added", TaskExecAdded.newBuilder().setContainerId(task.id())
                .setExecId(r.getExecId()).build());
        return Empty.getDefaultInstance();
    }

    private WaitResponse waitFor(WaitRequest r) throws InterruptedException, ExecutionException {
        ShimProcess process = process(task(r.getId()), r.getExecId());
        ShimProcess.Exit exit = process.exit.get();
        return WaitResponse.newBuilder().setExitStatus(exit.status()).setExitedAt(time(exit.at())).build();
    }

    private Empty kill(KillRequest r) throws IOException, InterruptedException {
        Task task = task(r.getId());
        ShimProcess process = process(task, r.getExecId());
        if (process.state() == ShimProcess.State.STOPPED) {
            throw TtrpcServer.RpcError.notFound("process " + describe(r.getId(), r.getExecId()) + " not running");
        }
        if (r.getExecId().isEmpty()) {
            java.util.List<String> cmd = r.getAll()
                    ? task.runtime().command("kill", "--all", task.id(), Integer.toString(r.getSignal()))
                    : task.runtime().command("kill", task.id(), Integer.toString(r.getSignal()));
            run(cmd, "kill " + task.id());
        } else {
            run(java.util.List.of("kill", "-s", Integer.toString(r.getSignal()), Integer.toString(process.pid())),
                    "kill exec " + r.getExecId());
        }
        return Empty.getDefaultInstance();
    }

    private DeleteResponse delete(DeleteRequest r) throws IOException, InterruptedException {
        Task task = task(r.getId());
        ShimProcess process = process(task, r.getExecId());
        if (process.state() == ShimProcess.State.RUNNING) {
            throw TtrpcServer.RpcError.precondition("process " + describe(r.getId(), r.getExecId())
                    + " is running (kill it first)");
        }
        ShimProcess.Exit exit = process.exit.getNow(new ShimProcess.Exit(0, Instant.now()));
        if (!r.getExecId().isEmpty()) {
            task.execs().remove(r.getExecId());
        } else {
            if (process.state() == ShimProcess.State.CREATED) {
                run(task.runtime().command("kill", task.id(), "9"), "kill " + task.id());
            }
            run(task.runtime().command("delete", "--force", task.id()), "delete " + task.id());
            unmountRootfs(task.bundle());
            tasks.remove(task.id());
            paused.remove(task.id());
            events.publish("/tasks/delete", TaskDelete.newBuilder().setContainerId(task.id()).setPid(process.pid())
                    .setExitStatus(exit.status()).setExitedAt(time(exit.at())).setId(task.id()).build());
        }
        DeleteResponse response = DeleteResponse.newBuilder().setPid(process.pid()).setExitStatus(exit.status())
                .setExitedAt(time(exit.at())).build();
        if (r.getExecId().isEmpty()) {
            // the task is gone: the `delete` action containerd runs next answers from this file without a JVM
            Files.write(task.bundle().resolve(DELETED), response.toByteArray());
        }
        return response;
    }

    /** Written once a task's init was deleted: its DeleteResponse, which the launcher's {@code delete} prints. */
    static final String DELETED = "kiln-deleted";

    static void unmountRootfs(Path bundle) throws IOException, InterruptedException {
        Path rootfs = bundle.resolve("rootfs");
        if (!Files.isDirectory(rootfs)) return;
        // only if something is mounted there: umount of a plain directory fails harmlessly
        Children.start(new ProcessBuilder("umount", rootfs.toString()).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)).waitFor();
    }

    private StateResponse state(StateRequest r) {
        Task task = task(r.getId());
        ShimProcess p = process(task, r.getExecId());
        Status status = switch (p.state()) {
            case CREATED -> Status.CREATED;
            case RUNNING -> Status.RUNNING;
            case STOPPED -> Status.STOPPED;
        };
        if (p.state() == ShimProcess.State.RUNNING && r.getExecId().isEmpty() && paused.contains(task.id())) {
            status = Status.PAUSED;
        }
        StateResponse.Builder b = StateResponse.newBuilder().setId(r.getId()).setBundle(task.bundle().toString())
                .setPid(p.pid()).setStatus(status).setStdin(p.stdinPath).setStdout(p.stdoutPath)
                .setStderr(p.stderrPath).setTerminal(p.terminal).setExecId(r.getExecId());
        ShimProcess.Exit exit = p.exit.getNow(null);
        if (exit != null) b.setExitStatus(exit.status()).setExitedAt(time(exit.at()));
        return b.build();
    }

    private PidsResponse pids(PidsRequest r) throws IOException, InterruptedException {
        Task task = task(r.getId());
        String out = run(task.runtime().command("ps", "--format", "json", task.id()), "ps " + task.id());
        PidsResponse.Builder b = PidsResponse.newBuilder();
        for (JsonNode pid : JSON.readTree(out)) {
            b.addProcesses(ProcessInfo.newBuilder().setPid(pid.asInt()));
        }
        return b.build();
    }

    private Empty resize(ResizePtyRequest r) {
        process(task(r.getId()), r.getExecId()).resize(r.getWidth(), r.getHeight());
        return Empty.getDefaultInstance();
    }

    private ConnectResponse connect(ConnectRequest r) {
        Task task = tasks.get(r.getId());
        return ConnectResponse.newBuilder().setShimPid((int) ProcessHandle.current().pid())
                .setTaskPid(task == null ? 0 : task.init().pid()).setVersion("kiln").build();
    }

    private Empty shutdown(ShutdownRequest r) {
        log.line("shutdown requested for " + r.getId() + (r.getNow() ? " (now)" : "") + (idle() ? ", no task left" : ""));
        if (idle() || r.getNow()) shutdown.run();
        return Empty.getDefaultInstance();
    }

    private StatsResponse stats(StatsRequest r) throws IOException, InterruptedException {
        Task task = task(r.getId());
        String out = run(task.runtime().command("events", "--stats", task.id()), "stats of " + task.id());
        return StatsResponse.newBuilder().setStats(Any.newBuilder().setTypeUrl("io.containerd.cgroups.v1.Metrics")
                .setValue(CgroupMetrics.fromRuntimeStats(JSON.readTree(out)).toByteString())).build();
    }

    private Empty update(UpdateTaskRequest r) throws IOException, InterruptedException {
        Task task = task(r.getId());
        Path file = task.bundle().resolve("resources.json");
        // LinuxResources as JSON (containerd's typeurl registration), what runc update -r reads
        Files.write(file, r.getResources().getValue().toByteArray());
        run(task.runtime().command("update", "-r", file.toString(), task.id()), "update " + task.id());
        return Empty.getDefaultInstance();
    }

    private Empty freeze(String id, String verb) throws IOException, InterruptedException {
        Task task = task(id);
        if (!task.runtime().isolation().equals("container")) {
            throw TtrpcServer.RpcError.unimplemented(verb + " is not implemented for kiln's "
                    + task.runtime().isolation() + " isolation");
        }
        run(task.runtime().command(verb, id), verb + " " + id);
        if (verb.equals("pause")) paused.add(id);
        else paused.remove(id);
        return Empty.getDefaultInstance();
    }

    private Task task(String id) {
        Task task = tasks.get(id);
        if (task == null) throw TtrpcServer.RpcError.notFound("task " + id + " not found");
        return task;
    }

    private static ShimProcess process(Task task, String execId) {
        if (execId.isEmpty()) return task.init();
        ShimProcess p = task.execs().get(execId);
        if (p == null) throw TtrpcServer.RpcError.notFound("exec " + execId + " not found in " + task.id());
        return p;
    }

    private static String describe(String id, String execId) {
        return execId.isEmpty() ? id : id + "/" + execId;
    }

    /**
     * Runs a runtime command to its end (at most 60 s); its stdout, or FailedPrecondition with its last error. Output
     * goes through files, not pipes: a runtime may leave a helper holding them (runsc's gofer for a pod's container,
     * started by {@code runsc start}), and reading a pipe to its end would then wait for that helper.
     */
    static String run(java.util.List<String> cmd, String what) throws IOException, InterruptedException {
        Path out = Files.createTempFile("kiln-shim-", ".out");
        Path err = Files.createTempFile("kiln-shim-", ".err");
        try {
            Process p = Children.start(new ProcessBuilder(cmd)
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(out.toFile()).redirectError(err.toFile()));
            if (!p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw TtrpcServer.RpcError.precondition(what + " did not finish within 60 s");
            }
            if (p.exitValue() != 0) {
                String last = Files.readString(err).strip();
                last = last.isEmpty() ? "" : last.lines().reduce((x, y) -> y).orElse("");
                int log = cmd.indexOf("--log");
                if (last.isEmpty() && log >= 0) last = ShimProcess.lastError(Path.of(cmd.get(log + 1)));
                throw TtrpcServer.RpcError.precondition(what + " failed: " + last);
            }
            return Files.readString(out);
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    static Timestamp time(Instant at) {
        return Timestamp.newBuilder().setSeconds(at.getEpochSecond()).setNanos(at.getNano()).build();
    }

    boolean idle() {
        return tasks.isEmpty() && vms.idle();
    }
}
