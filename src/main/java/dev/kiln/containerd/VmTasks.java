package dev.kiln.containerd;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.Any;
import com.google.protobuf.Empty;
import com.google.protobuf.Message;
import com.google.protobuf.UnknownFieldSet;
import dev.kiln.KilnException;
import dev.kiln.containerd.wire.events.TaskCreate;
import dev.kiln.containerd.wire.events.TaskDelete;
import dev.kiln.containerd.wire.events.TaskExecAdded;
import dev.kiln.containerd.wire.events.TaskExecStarted;
import dev.kiln.containerd.wire.events.TaskExit;
import dev.kiln.containerd.wire.events.TaskIO;
import dev.kiln.containerd.wire.events.TaskStart;
import dev.kiln.containerd.wire.task.*;
import dev.kiln.containerd.wire.types.ProcessInfo;
import dev.kiln.containerd.wire.types.Status;
import dev.kiln.isolation.Mount;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.vm.DirectoryVm;
import dev.kiln.isolation.vm.VmOptions;
import dev.kiln.isolation.vm.jail.VmmIds;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The tasks of kiln's {@code vm} isolation (docs/containerd.md): each a microVM booted on the bundle's rootfs
 * directory, shared with virtio-fs ({@link DirectoryVm}: kiln's VM code, no kilnd). Create boots the VM (its relay is
 * the task's process, with the task's stdio) and holds the guest's process until Start; an exec is a relay-exec into
 * the guest. {@link TaskService} hands every request for these tasks here.
 */
final class VmTasks {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Where the shim keeps the VM caches (kernel, initramfs) and the VMM uid claims; containerd's env may say. */
    static final String ROOT_ENV = "KILN_CONTAINERD_ROOT";
    private static final Path DEFAULT_ROOT = Path.of("/var/lib/kiln-containerd");
    /** Paths of the OCI spec's mounts kiln-init makes itself in the guest. */
    private static final Set<String> GUEST_OWN = Set.of("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
            "/sys", "/sys/fs/cgroup");

    /**
     * A task: a VM of its own (pod null: a ctr task, or a CRI pod's sandbox), or a container of a pod, run inside the
     * pod's VM in its own root ({@code pod} is the sandbox's task); {@code spec} is a pod container's process.
     */
    private record VmTask(String id, Path bundle, Path dir, String vmId, VmProcess init,
                          Map<String, VmProcess> execs, Map<String, ProcessSpec> execSpecs, VmTask pod,
                          ProcessSpec spec, DirectoryVm.PodFiles etc) {

        /** The task whose VM this one runs in. */
        VmTask vm() {
            return pod == null ? this : pod;
        }

        /** The container's name in the pod's VM (its root's), null for the VM's own. */
        String container() {
            return pod == null ? null : id;
        }
    }

    static final String CONTAINER_TYPE = "io.kubernetes.cri.container-type";
    static final String SANDBOX_ID = "io.kubernetes.cri.sandbox-id";

    private final Map<String, VmTask> tasks = new ConcurrentHashMap<>();
    private final EventPublisher events;
    private final ShimLog log;
    private volatile DirectoryVm machine;

    VmTasks(EventPublisher events, ShimLog log) {
        this.events = events;
        this.log = log;
    }

    static DirectoryVm machine() {
        return new DirectoryVm(VmOptions.defaults(root()).withVmmUidRange(VmmIds.Range.parse(DirectoryVm.UID_RANGE)));
    }

    private DirectoryVm vm() {
        if (machine == null) machine = machine();
        return machine;
    }

    /**
     * A spare shim's warm-up for vm pods: what a VM's preparation computes from the node's files, done now in this
     * JVM (DirectoryVm.warm), so that a kiln-vm pod's Create does not; nothing on a node without QEMU. A failure is
     * left for that Create to report. It ends between its steps once {@code enough} says so (the spare was claimed).
     * True if it ran on the caches of a node that has made a pod VM ({@link #cachesMade}): nothing is left to warm
     * then; false if it was skipped or ran before them (the spare may look again: {@link #cachesMade}).
     */
    static boolean warm(java.util.function.BooleanSupplier enough) {
        try {
            // only on a node that has booted a pod VM (its caches' directory, made by the first one): elsewhere
            // this step was 150-430 ms of every spare's warm-up at load 7-10 (modules.dep, kiln-init's digest), CPU
            // that pods started back to back competed with, for VMs that never come; the first VM pod pays it once
            if (!Files.isDirectory(root().resolve("kernels"))) return false;
            boolean made = cachesMade();
            machine().warm(enough);
            return made;
        } catch (RuntimeException e) {
            // the pod's Create meets it again and says what failed
            return true;
        }
    }

    /**
     * Whether a pod VM was made on this node: its Create writes the jail's library list ({@code kernels/vmm-libraries})
     * after the kernel and initramfs caches. An idle spare that warmed before that looks at this once a second and
     * warms the vm path then (Spare.warmVmLater): one whose warm-up came before the node's first VM pod otherwise
     * gave the next VM pod a cold vm path (the quiet suite's slowest kiln-vm pod, 4030 ms against a median of 2997).
     */
    static boolean cachesMade() {
        return Files.exists(root().resolve("kernels").resolve("vmm-libraries"));
    }

    private static Path root() {
        String env = System.getenv(ROOT_ENV);
        return env == null || env.isEmpty() ? DEFAULT_ROOT : Path.of(env);
    }

    /** The VM's name for its cgroups and uid claim: from the bundle's path, so {@code delete} finds it again. */
    static String vmId(Path bundle) {
        try {
            byte[] sum = MessageDigest.getInstance("SHA-256").digest(bundle.toAbsolutePath().toString()
                    .getBytes(StandardCharsets.UTF_8));
            return "ctrd-" + HexFormat.of().formatHex(sum).substring(0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static Path dir(Path bundle) {
        return bundle.resolve("kiln-vm");
    }

    /** The task id of a Task request: field 1 of every one of them. */
    static String idOf(byte[] request) throws IOException {
        var f = UnknownFieldSet.parseFrom(request).getField(1);
        return f == null || f.getLengthDelimitedList().isEmpty() ? ""
                : f.getLengthDelimitedList().getFirst().toStringUtf8();
    }

    boolean owns(String id) {
        return tasks.containsKey(id);
    }

    boolean idle() {
        return tasks.isEmpty();
    }

    byte[] call(String method, byte[] p) throws Exception {
        Message out = switch (method) {
            case "Start" -> start(StartRequest.parseFrom(p));
            case "Wait" -> waitFor(WaitRequest.parseFrom(p));
            case "Kill" -> kill(KillRequest.parseFrom(p));
            case "Delete" -> delete(DeleteRequest.parseFrom(p));
            case "State" -> state(StateRequest.parseFrom(p));
            case "Pids" -> pids(PidsRequest.parseFrom(p));
            case "Exec" -> exec(ExecProcessRequest.parseFrom(p));
            case "ResizePty" -> resize(ResizePtyRequest.parseFrom(p));
            case "CloseIO" -> Empty.getDefaultInstance();
            case "Connect" -> connect(ConnectRequest.parseFrom(p));
            case "Stats" -> stats(StatsRequest.parseFrom(p));
            case "Pause" -> freeze(PauseRequest.parseFrom(p).getId(), true);
            case "Resume" -> freeze(ResumeRequest.parseFrom(p).getId(), false);
            case "Update" -> throw TtrpcServer.RpcError.unimplemented("a VM's memory and vCPUs are fixed at its boot "
                    + "(kiln has no balloon or CPU hot-plug)");
            case "Checkpoint" -> throw TtrpcServer.RpcError.unimplemented("checkpoint is not implemented by kiln");
            default -> throw TtrpcServer.RpcError.unimplemented("method " + method + " is not implemented");
        };
        return out.toByteArray();
    }

    CreateTaskResponse create(CreateTaskRequest r, JsonNode spec, Path bundle) throws IOException {
        JsonNode annotations = spec.path("annotations");
        if (annotations.path(CONTAINER_TYPE).asText("").equals("container")) {
            return createInPod(r, spec, bundle, annotations.path(SANDBOX_ID).asText(""));
        }
        boolean sandbox = annotations.path(CONTAINER_TYPE).asText("").equals("sandbox");
        Path dir = dir(bundle);
        String vmId = vmId(bundle);
        // a claimed spare's next spare waits for this VM's guest (the relay's timings.json), from now: a node's
        // first VM's Create alone can outlast the 3 s a claimed spare defers it otherwise
        Spare.nextOnceBooted(dir.resolve("vm").resolve("timings.json"));
        Files.createDirectories(dir);
        VmProcess init = new VmProcess("", r.getTerminal(), r.getStdin(), r.getStdout(), r.getStderr());
        VmTask task = new VmTask(r.getId(), bundle, dir, vmId, init, new ConcurrentHashMap<>(),
                new ConcurrentHashMap<>(), null, null, null);
        int pid;
        try {
            DirectoryVm.Request request = request(r.getId(), spec, bundle, dir, vmId, init.stdinOpen());
            if (sandbox) { // the pod's VM: its containers' roots will appear in the pod directory
                List<Mount> mounts = new ArrayList<>(request.mounts());
                mounts.add(DirectoryVm.podShare(dir));
                request = new DirectoryVm.Request(request.id(), request.dir(), request.root(), request.process(),
                        request.hostname(), request.hosts(), request.resolv(), request.readOnly(), mounts,
                        request.memoryBytes(), request.cpus(), request.netns());
            }
            List<String> relay = vm().prepare(request);
            pid = init.launch(relay, dir.resolve("relay.log"), () -> exited(task, init));
        } catch (KilnException e) {
            vm().cleanup(vmId, dir);
            throw TtrpcServer.RpcError.precondition(e.getMessage());
        }
        tasks.put(r.getId(), task);
        log.line("created " + r.getId() + " (vm, relay pid " + pid + ")");
        events.publish("/tasks/create", TaskCreate.newBuilder().setContainerId(r.getId()).setBundle(r.getBundle())
                .addAllRootfs(r.getRootfsList()).setIo(TaskIO.newBuilder().setStdin(r.getStdin())
                        .setStdout(r.getStdout()).setStderr(r.getStderr()).setTerminal(r.getTerminal()))
                .setPid(pid).build());
        return CreateTaskResponse.newBuilder().setPid(pid).build();
    }

    /**
     * A CRI app container of a kiln-vm pod: its root (the bundle's rootfs) bound into the pod directory the pod's VM
     * shares; its process starts at Start as an exec into that VM in that root ({@code chroot=}), with the task's
     * stdio, so it has its own output, exit and execs and shares the pod's network (localhost between containers).
     */
    private CreateTaskResponse createInPod(CreateTaskRequest r, JsonNode spec, Path bundle, String sandboxId)
            throws IOException {
        VmTask pod = tasks.get(sandboxId);
        if (pod == null || pod.pod() != null) {
            throw TtrpcServer.RpcError.precondition("the VM of pod " + sandboxId + " is not served by this shim "
                    + "(containerd-shim-kiln-v2 groups a pod's tasks by io.kubernetes.cri.sandbox-id)");
        }
        Path dir = dir(bundle);
        Files.createDirectories(dir);
        VmProcess init = new VmProcess("", r.getTerminal(), r.getStdin(), r.getStdout(), r.getStderr());
        ProcessSpec process = process(spec.path("process"), init.stdinOpen());
        try {
            DirectoryVm.podRoot(pod.dir(), r.getId(), bundle.resolve("rootfs"));
        } catch (KilnException e) {
            throw TtrpcServer.RpcError.precondition(e.getMessage());
        }
        VmTask task = new VmTask(r.getId(), bundle, dir, pod.vmId(), init, new ConcurrentHashMap<>(),
                new ConcurrentHashMap<>(), pod, process, podFiles(spec));
        tasks.put(r.getId(), task);
        log.line("created " + r.getId() + " (vm, in pod " + sandboxId + ")");
        events.publish("/tasks/create", TaskCreate.newBuilder().setContainerId(r.getId()).setBundle(r.getBundle())
                .addAllRootfs(r.getRootfsList()).setIo(TaskIO.newBuilder().setStdin(r.getStdin())
                        .setStdout(r.getStdout()).setStderr(r.getStderr()).setTerminal(r.getTerminal()))
                .build());
        return CreateTaskResponse.getDefaultInstance(); // its process exists from Start on
    }

    /**
     * CRI's per-pod /etc/hosts, /etc/resolv.conf and /etc/hostname of a pod's container (files its spec binds: the
     * sandbox's copies, made by CRI from the node's or the pod's DNS config and the pod's hostname): their content,
     * which the guest binds over the container root's (virtio-fs shares directories, not files).
     */
    private static DirectoryVm.PodFiles podFiles(JsonNode spec) throws IOException {
        String hosts = null, resolv = null, hostname = null;
        for (JsonNode m : spec.path("mounts")) {
            String target = m.path("destination").asText();
            if (!List.of("/etc/hosts", "/etc/resolv.conf", "/etc/hostname").contains(target)) continue;
            Path source = Path.of(m.path("source").asText());
            if (!Files.isRegularFile(source) || Files.size(source) > 16 * 1024) continue; // the EXEC request is one 64 KiB frame
            String text = Files.readString(source);
            switch (target) {
                case "/etc/hosts" -> hosts = text;
                case "/etc/resolv.conf" -> resolv = text;
                default -> hostname = text.strip().matches("[A-Za-z0-9.-]{1,253}") ? text.strip() : null; // a name, one line
            }
        }
        return hosts == null && resolv == null && hostname == null ? null
                : new DirectoryVm.PodFiles(hosts, resolv, hostname);
    }

    /** The VM of an OCI spec: its process, names, files and mounts as the guest takes them. */
    private static DirectoryVm.Request request(String id, JsonNode spec, Path bundle, Path dir, String vmId,
                                               boolean stdin) throws IOException {
        ProcessSpec process = process(spec.path("process"), stdin);
        String hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", resolv = null;
        String hostname = spec.path("hostname").asText("");
        List<Mount> mounts = new ArrayList<>();
        for (JsonNode m : spec.path("mounts")) {
            String target = m.path("destination").asText();
            String type = m.path("type").asText("bind");
            List<String> options = new ArrayList<>();
            m.path("options").forEach(o -> options.add(o.asText()));
            if (GUEST_OWN.contains(target)) continue;
            if (options.contains("bind") || options.contains("rbind") || type.equals("bind")) {
                Path source = Path.of(m.path("source").asText());
                switch (target) { // CRI's per-pod files: a VM takes their content (virtio-fs shares directories)
                    case "/etc/hosts" -> hosts = Files.readString(source);
                    case "/etc/resolv.conf" -> resolv = Files.readString(source);
                    case "/etc/hostname" -> hostname = Files.readString(source).strip();
                    default -> {
                        if (Files.isDirectory(source)) {
                            mounts.add(new Mount("bind", source.toString(), target,
                                    options.contains("ro") ? List.of("ro") : List.of()));
                        }
                        // a file bound elsewhere (kubelet's termination-log) is not visible in the guest
                    }
                }
            } else if (type.equals("tmpfs")) {
                mounts.add(new Mount("tmpfs", "tmpfs", target, options.stream().filter(o -> o.startsWith("size=")
                        || o.startsWith("mode=") || List.of("ro", "nosuid", "nodev", "noexec").contains(o)).toList()));
            }
        }
        JsonNode res = spec.path("linux").path("resources");
        long memory = res.path("memory").path("limit").asLong(0);
        if (memory <= 0) memory = spec.path("annotations").path("io.kubernetes.cri.sandbox-memory").asLong(0);
        long quota = res.path("cpu").path("quota").asLong(0), period = res.path("cpu").path("period").asLong(0);
        if (quota <= 0) { // a pod's sandbox: the pod's sizing (CRI's annotations)
            quota = spec.path("annotations").path("io.kubernetes.cri.sandbox-cpu-quota").asLong(0);
            period = spec.path("annotations").path("io.kubernetes.cri.sandbox-cpu-period").asLong(0);
        }
        int cpus = quota > 0 && period > 0 ? (int) ((quota + period - 1) / period) : 1;
        Path netns = null;
        for (JsonNode ns : spec.path("linux").path("namespaces")) {
            if (ns.path("type").asText().equals("network") && !ns.path("path").asText("").isEmpty()) {
                netns = Path.of(ns.path("path").asText());
            }
        }
        return new DirectoryVm.Request(vmId, dir, bundle.resolve("rootfs"), process, hostname, hosts, resolv,
                spec.path("root").path("readonly").asBoolean(false), mounts, memory, cpus, netns);
    }

    private static ProcessSpec process(JsonNode p, boolean stdin) {
        List<String> args = new ArrayList<>();
        p.path("args").forEach(a -> args.add(a.asText()));
        List<String> env = new ArrayList<>();
        p.path("env").forEach(e -> env.add(e.asText()));
        List<Integer> groups = new ArrayList<>();
        p.path("user").path("additionalGids").forEach(g -> groups.add(g.asInt()));
        if (args.isEmpty()) throw TtrpcServer.RpcError.invalid("the process has no args");
        return new ProcessSpec(args, env, p.path("cwd").asText("/"), p.path("user").path("uid").asInt(0),
                p.path("user").path("gid").asInt(0), groups, p.path("terminal").asBoolean(false), stdin);
    }

    private void exited(VmTask task, VmProcess process) {
        ShimProcess.Exit exit = process.exit.join();
        log.line(task.id() + (process.execId.isEmpty() ? "" : " exec " + process.execId) + " exited "
                + exit.status());
        events.publish("/tasks/exit", TaskExit.newBuilder().setContainerId(task.id())
                .setId(process.execId.isEmpty() ? task.id() : process.execId).setPid(process.pid())
                .setExitStatus(exit.status()).setExitedAt(TaskService.time(exit.at())).build());
    }

    private StartResponse start(StartRequest r) throws IOException {
        VmTask task = task(r.getId());
        if (r.getExecId().isEmpty() && task.pod() != null) {
            VmProcess init = task.init();
            Path request = task.dir().resolve("init.spec");
            int pid;
            try {
                pid = init.launch(DirectoryVm.exec(task.pod().dir(), request, task.spec(), task.id(), task.etc()),
                        task.dir().resolve("relay.log"), () -> exited(task, init));
            } catch (KilnException e) {
                throw TtrpcServer.RpcError.precondition(e.getMessage());
            }
            init.started();
            events.publish("/tasks/start", TaskStart.newBuilder().setContainerId(task.id()).setPid(pid).build());
            return StartResponse.newBuilder().setPid(pid).build();
        }
        if (r.getExecId().isEmpty()) {
            DirectoryVm.open(task.dir());
            task.init().started();
            events.publish("/tasks/start", TaskStart.newBuilder().setContainerId(task.id())
                    .setPid(task.init().pid()).build());
            return StartResponse.newBuilder().setPid(task.init().pid()).build();
        }
        VmProcess exec = process(task, r.getExecId());
        ProcessSpec spec = task.execSpecs().get(r.getExecId());
        Path request = task.dir().resolve("exec-" + Integer.toHexString(r.getExecId().hashCode()) + ".spec");
        int pid;
        try {
            pid = exec.launch(DirectoryVm.exec(task.vm().dir(), request, spec, task.container(), task.etc()),
                    task.dir().resolve("relay.log"),
                    () -> exited(task, exec));
        } catch (KilnException e) {
            throw TtrpcServer.RpcError.precondition(e.getMessage());
        }
        exec.started();
        events.publish("/tasks/exec-started", TaskExecStarted.newBuilder().setContainerId(task.id())
                .setExecId(r.getExecId()).setPid(pid).build());
        return StartResponse.newBuilder().setPid(pid).build();
    }

    private Empty exec(ExecProcessRequest r) throws IOException {
        VmTask task = task(r.getId());
        if (task.execs().containsKey(r.getExecId())) {
            throw TtrpcServer.RpcError.alreadyExists("exec " + r.getExecId() + " exists in " + r.getId());
        }
        if (!r.getSpec().getTypeUrl().endsWith("runtime-spec/1/Process")) {
            throw TtrpcServer.RpcError.invalid("exec spec of type " + r.getSpec().getTypeUrl() + " is not an OCI Process");
        }
        VmProcess exec = new VmProcess(r.getExecId(), r.getTerminal(), r.getStdin(), r.getStdout(), r.getStderr());
        task.execSpecs().put(r.getExecId(), process(JSON.readTree(r.getSpec().getValue().toByteArray()),
                exec.stdinOpen()));
        task.execs().put(r.getExecId(), exec);
        events.publish("/tasks/exec-added", TaskExecAdded.newBuilder().setContainerId(task.id())
                .setExecId(r.getExecId()).build());
        return Empty.getDefaultInstance();
    }

    private WaitResponse waitFor(WaitRequest r) throws Exception {
        ShimProcess.Exit exit = process(task(r.getId()), r.getExecId()).exit.get();
        return WaitResponse.newBuilder().setExitStatus(exit.status()).setExitedAt(TaskService.time(exit.at())).build();
    }

    private Empty kill(KillRequest r) throws IOException, InterruptedException {
        VmProcess process = process(task(r.getId()), r.getExecId());
        if (process.state() == ShimProcess.State.STOPPED) {
            throw TtrpcServer.RpcError.notFound("process " + r.getId() + " not running");
        }
        // the init's relay passes the signal to the guest's main process (whose end ends the VM: `all` is the same)
        process.signal(r.getSignal());
        return Empty.getDefaultInstance();
    }

    private DeleteResponse delete(DeleteRequest r) throws IOException, InterruptedException {
        VmTask task = task(r.getId());
        VmProcess process = process(task, r.getExecId());
        if (process.state() == ShimProcess.State.RUNNING) {
            throw TtrpcServer.RpcError.precondition("process " + r.getId() + " is running (kill it first)");
        }
        if (process.state() == ShimProcess.State.CREATED && process.pid() > 0) {
            process.signal(9);
            try {
                process.exit.get(10, java.util.concurrent.TimeUnit.SECONDS);
            } catch (Exception e) {
                // cleanup below kills what is left
            }
        }
        ShimProcess.Exit exit = process.exit.getNow(new ShimProcess.Exit(0, Instant.now()));
        if (!r.getExecId().isEmpty()) {
            task.execs().remove(r.getExecId());
            task.execSpecs().remove(r.getExecId());
        } else {
            if (task.pod() != null) DirectoryVm.podRootGone(task.pod().dir(), task.id());
            else vm().cleanup(task.vmId(), task.dir());
            TaskService.unmountRootfs(task.bundle());
            tasks.remove(task.id());
            events.publish("/tasks/delete", TaskDelete.newBuilder().setContainerId(task.id()).setPid(process.pid())
                    .setExitStatus(exit.status()).setExitedAt(TaskService.time(exit.at())).setId(task.id()).build());
        }
        DeleteResponse response = DeleteResponse.newBuilder().setPid(process.pid()).setExitStatus(exit.status())
                .setExitedAt(TaskService.time(exit.at())).build();
        if (r.getExecId().isEmpty()) Files.write(task.bundle().resolve(TaskService.DELETED), response.toByteArray());
        return response;
    }

    /** What {@code delete} does for a VM task whose shim died: the VM's leftovers, by the bundle alone. */
    static void forget(Path bundle) {
        machine().cleanup(vmId(bundle), dir(bundle));
    }

    private StateResponse state(StateRequest r) {
        VmTask task = task(r.getId());
        VmProcess p = process(task, r.getExecId());
        Status status = switch (p.state()) {
            case CREATED -> Status.CREATED;
            case RUNNING -> Status.RUNNING;
            case STOPPED -> Status.STOPPED;
        };
        if (status == Status.RUNNING && r.getExecId().isEmpty() && Files.exists(task.dir().resolve("paused"))) {
            status = Status.PAUSED;
        }
        StateResponse.Builder b = StateResponse.newBuilder().setId(r.getId()).setBundle(task.bundle().toString())
                .setPid(p.pid()).setStatus(status).setStdin(p.stdinPath).setStdout(p.stdoutPath)
                .setStderr(p.stderrPath).setTerminal(p.terminal).setExecId(r.getExecId());
        ShimProcess.Exit exit = p.exit.getNow(null);
        if (exit != null) b.setExitStatus(exit.status()).setExitedAt(TaskService.time(exit.at()));
        return b.build();
    }

    /** The host's processes of the task: its relays (the guest's own are inside the VM). */
    private PidsResponse pids(PidsRequest r) {
        VmTask task = task(r.getId());
        PidsResponse.Builder b = PidsResponse.newBuilder();
        if (task.init().pid() > 0) b.addProcesses(ProcessInfo.newBuilder().setPid(task.init().pid()));
        for (VmProcess x : task.execs().values()) {
            if (x.pid() > 0 && x.state() == ShimProcess.State.RUNNING) {
                b.addProcesses(ProcessInfo.newBuilder().setPid(x.pid()));
            }
        }
        return b.build();
    }

    private Empty resize(ResizePtyRequest r) {
        process(task(r.getId()), r.getExecId()).resize(r.getWidth(), r.getHeight());
        return Empty.getDefaultInstance();
    }

    private ConnectResponse connect(ConnectRequest r) {
        return ConnectResponse.newBuilder().setShimPid((int) ProcessHandle.current().pid())
                .setTaskPid(task(r.getId()).init().pid()).setVersion("kiln").build();
    }

    /** The VMM's CPU time and resident memory (the VM's footprint on the host), as cgroups v1 Metrics. */
    private StatsResponse stats(StatsRequest r) throws IOException {
        VmTask task = task(r.getId());
        long pid = vm().vmmPid(task.vm().dir()).orElseThrow(() -> TtrpcServer.RpcError.precondition("task " + r.getId()
                + " has no VM running"));
        String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        long user = Long.parseLong(f[11]) * 10_000_000L, system = Long.parseLong(f[12]) * 10_000_000L;
        long rss = Long.parseLong(Files.readString(Path.of("/proc", Long.toString(pid), "statm")).split(" ")[1]) * 4096;
        ObjectNode data = JSON.createObjectNode();
        ObjectNode usage = data.putObject("cpu").putObject("usage");
        usage.put("total", user + system).put("user", user).put("kernel", system);
        data.putObject("memory").putObject("usage").put("usage", rss);
        data.putObject("pids").put("current", 1 + task.execs().size());
        ObjectNode event = JSON.createObjectNode();
        event.set("data", data);
        return StatsResponse.newBuilder().setStats(Any.newBuilder().setTypeUrl("io.containerd.cgroups.v1.Metrics")
                .setValue(CgroupMetrics.fromRuntimeStats(event).toByteString())).build();
    }

    private Empty freeze(String id, boolean paused) throws IOException {
        VmTask task = task(id);
        if (task.pod() != null) {
            throw TtrpcServer.RpcError.unimplemented("a container of a kiln-vm pod cannot be paused alone (its VM "
                    + "runs the whole pod)");
        }
        try {
            vm().pause(task.dir(), paused);
        } catch (KilnException e) {
            throw TtrpcServer.RpcError.precondition(e.getMessage());
        }
        if (paused) Files.writeString(task.dir().resolve("paused"), "");
        else Files.deleteIfExists(task.dir().resolve("paused"));
        return Empty.getDefaultInstance();
    }

    private VmTask task(String id) {
        VmTask task = tasks.get(id);
        if (task == null) throw TtrpcServer.RpcError.notFound("task " + id + " not found");
        return task;
    }

    private static VmProcess process(VmTask task, String execId) {
        if (execId.isEmpty()) return task.init();
        VmProcess p = task.execs().get(execId);
        if (p == null) throw TtrpcServer.RpcError.notFound("exec " + execId + " not found in " + task.id());
        return p;
    }
}
