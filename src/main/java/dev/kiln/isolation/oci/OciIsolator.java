package dev.kiln.isolation.oci;

import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.OwnerOnly;
import dev.kiln.isolation.Availability;
import dev.kiln.isolation.EtcFiles;
import dev.kiln.isolation.Isolation;
import dev.kiln.isolation.Isolator;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.RuntimeBinary;
import dev.kiln.isolation.SandboxOptions;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.SandboxTask;
import dev.kiln.isolation.shim.Shim;
import dev.kiln.isolation.shim.ShimBinary;
import dev.kiln.isolation.shim.ShimOptions;
import dev.kiln.rootfs.Mounts;
import dev.kiln.rootfs.Trees;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The {@code container} (runc) and {@code gvisor} (runsc) isolations: one OCI bundle in the sandbox's directory
 * ({@code config.json}, an overlay of the image's tree and the sandbox's writable layer at {@code rootfs}), a
 * kiln-shim in {@code main/} that owns the sandbox's stdio, and kill/exec/ps/delete through the runtime's own
 * commands ({@link OciTask}). For runc the shim runs {@code runc create} and {@code runc start} and reaps the
 * container's init itself, as podman's conmon does, so no runc process stays beside an idle container; runsc runs
 * in the foreground under the shim ({@code runsc run}), the one process that learns the exit status of the
 * application inside the Sentry (docs/shim.md).
 */
public final class OciIsolator implements Isolator {
    private static final KilnLog LOG = KilnLog.of(OciIsolator.class);

    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration START_TIMEOUT = Duration.ofSeconds(20);

    private final OciRuntime runtime;
    private final RuntimeBinary binary;
    private final Path stateRoot;
    private final List<String> globalFlags;
    /** Sandbox id to its cgroup watch, from start to cleanup. */
    private final Map<String, SandboxCgroup> cgroups = new ConcurrentHashMap<>();

    /**
     * {@code stateRoot}: the runtime's {@code --root}; {@code globalFlags}: e.g. runsc's --platform;
     * {@code runtimePaths}: where the runtime binary is when not on PATH ({@code runtime-paths} in kilnd's config).
     */
    OciRuntime runtime() {
        return runtime;
    }

    public OciIsolator(OciRuntime runtime, Path stateRoot, List<String> globalFlags, Map<String, Path> runtimePaths) {
        SeccompProfile.kilnDefault(); // load at daemon start, not at the first sandbox
        this.runtime = runtime;
        this.binary = RuntimeBinary.of(runtime.binary(), "apt-get install " + runtime.binary(), runtimePaths);
        this.stateRoot = stateRoot;
        this.globalFlags = List.copyOf(globalFlags);
    }

    @Override
    public Isolation isolation() {
        return runtime.isolation();
    }

    private String name() {
        return runtime.isolation().name();
    }

    @Override
    public Availability availability() {
        return binary.availability("the " + name() + " isolation");
    }

    @Override
    public void check(SandboxOptions options) {
        String refusal = options.runtime() == null ? null : runtime.refused().get(options.runtime());
        if (refusal != null) {
            throw KilnException.invalid("--runtime " + options.runtime() + " is not supported yet: " + refusal);
        }
        SettingsCheck.check(options.settings(), runtime, options.network());
    }

    @Override
    public String runtime(String requested) {
        return runtime.binary();
    }

    @Override
    public void create(SandboxSpec spec) {
        binary.path("the " + name() + " isolation");
        // start calls create again after an exit: the bundle written at create time still holds
        Bundle bundle = new Bundle(spec.dir());
        if (Files.exists(bundle.configJson())) {
            Bundle.writeEtcFiles(spec, EtcFiles.hostResolvConf());
        } else {
            Bundle.write(spec, runtime);
        }
        OverlayRoot.mount(spec.imageRootfs(), spec.dir().resolve("upper"), spec.dir().resolve("work"), bundle.rootfs(),
                spec.disposable());
    }

    @Override
    public SandboxTask start(SandboxSpec spec, Duration waitAttach) {
        if (runtime == OciRuntime.RUNC) { // the shim's container mode: runc create + start, the shim reaps the init
            return launch(spec, waitAttach, command(spec), true);
        }
        return launch(spec, waitAttach, command(spec, "run", "--bundle", spec.dir().toString(), spec.id()), false);
    }

    /**
     * gVisor: {@code runsc checkpoint --image-path DIR} (its Sentry's whole state: memory, tasks, files it holds
     * in memory such as /tmp) into the checkpoint's directory; runsc ends the sandbox and its {@code runsc run}
     * exits 0. runc: refused, it would need CRIU (docs/checkpoint.md).
     */
    @Override
    public void checkpoint(SandboxSpec spec, SandboxTask task, Path dir, boolean leaveRunning) {
        requireCheckpoints(spec);
        if (leaveRunning) { // measured: it saves, then fails to restart the sandbox ("stopping container: context
            // deadline exceeded"), so the sandbox would be lost
            throw KilnException.invalid("--leave-running is not supported for gvisor sandboxes: this runsc ("
                    + "release 20221219) cannot restart a sandbox after its checkpoint; checkpoint it and start it "
                    + "again with --checkpoint");
        }
        List<String> cmd = new ArrayList<>(command(spec, "checkpoint", "--image-path", dir.toString()));
        cmd.add(spec.id());
        Result r = run(cmd);
        if (r.code != 0) {
            throw new KilnException(KilnException.Kind.INTERNAL, "runsc could not checkpoint sandbox " + spec.name()
                    + ": " + r.firstLine());
        }
    }

    /** {@code runsc restore --image-path DIR} in the foreground under the shim, as {@code runsc run} at a start. */
    @Override
    public SandboxTask restore(SandboxSpec spec, Path dir, Duration waitAttach) {
        requireCheckpoints(spec);
        return launch(spec, waitAttach, command(spec, "restore", "--image-path", dir.toString(), "--bundle",
                spec.dir().toString(), spec.id()), false);
    }

    private void requireCheckpoints(SandboxSpec spec) {
        if (runtime == OciRuntime.RUNC) {
            throw KilnException.invalid("checkpoints are not supported for the container isolation: runc needs CRIU "
                    + "for them, which kiln does not drive (use --isolation gvisor or vm)");
        }
        if (spec.network().netns() != null) { // hostinet: the Sentry's sockets are the host kernel's, not saved
            throw KilnException.invalid("checkpoints of a gvisor sandbox need --network none (with a network its "
                    + "sockets are the host kernel's, which runsc cannot save)");
        }
    }

    /** {@code container}: {@code cmd} is the runtime and its global flags, for the shim's container mode. */
    private SandboxTask launch(SandboxSpec spec, Duration waitAttach, List<String> cmd, boolean container) {
        deleteRuntimeState(spec); // a stale state dir from a crashed earlier run would block the name
        watchCgroup(spec);
        Path main = mainDir(spec);
        Trees.delete(main); // the last run's shim files (a first start has none: one unlinkat, no exception)
        try {
            Files.createDirectories(main);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot create " + main + ": " + e.getMessage(), e);
        }
        ShimOptions options = options(spec.process(), waitAttach, spec.log());
        if (container) {
            options = options.withContainer(spec.id(), spec.dir());
        } else if (!waitAttach.isZero() && !spec.process().tty()) {
            // runsc boots its Sentry and gofer (~200 ms) while kilnd finishes the start and attaches, instead of
            // after: the shim holds the output and the exit for that client (docs/shim.md). Not with a terminal,
            // whose size the client sets once attached.
            options = options.withHoldOutput();
        }
        Shim shim = Shim.launch(ShimBinary.locate(), main, options, cmd);
        if (waitAttach.isZero()) {
            awaitCreated(spec, shim);
        }
        return new OciTask(this, spec, shim);
    }

    @Override
    public SandboxTask adopt(SandboxSpec spec) {
        return new OciTask(this, spec, Shim.adopt(mainDir(spec)));
    }

    private static Path mainDir(SandboxSpec spec) {
        return spec.dir().resolve("main");
    }

    /**
     * As Docker's start, returns once the runtime knows the container, so a kill or exec right after start finds
     * it; or once the process already ended. Bounded: a runtime that hangs is reported by the shim's exit.
     */
    private void awaitCreated(SandboxSpec spec, Shim shim) {
        if (runtime == OciRuntime.RUNC) {
            // the shim writes started.json once "runc start" returned: the user's process runs (no runc process
            // per look: ten creates at once on two cores spent much of their time in "runc state")
            shim.awaitStarted(START_TIMEOUT);
            return;
        }
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline && shim.exitStatus().isEmpty()) {
            Result state = run(command(spec, "state", spec.id()));
            // "running": the user's process runs. Not "creating"/"created" (a signal would hit the runtime's
            // init), and not "stopped" (runsc reports it while it sets up): a process that really ended is seen
            // by the loop's exit-status check instead
            if (state.code == 0 && state.out.contains("\"running\"")) {
                return;
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    static ShimOptions options(ProcessSpec p, Duration waitAttach, Path log) {
        ShimOptions o = ShimOptions.defaults().withTty(p.tty()).withStdin(p.stdin()).withLog(log);
        return waitAttach.isZero() ? o : o.withWaitAttach(waitAttach);
    }

    /**
     * A fresh {@link SandboxCgroup} for this run, so each run's OOM count starts at 0. Without it (the memory
     * cgroup cannot be made or watched) the sandbox still runs, with the runtime's limit, and reports no OOM kill.
     */
    private void watchCgroup(SandboxSpec spec) {
        SandboxCgroup previous = cgroups.remove(spec.id());
        if (previous != null) {
            previous.close();
        }
        try {
            cgroups.put(spec.id(), SandboxCgroup.prepare(spec.id(), spec.resources().memoryBytes()));
        } catch (IOException | RuntimeException e) {
            LOG.sandbox(spec.id()).warn("cannot watch the sandbox for OOM kills (cgroup "
                    + SandboxCgroup.parentPath(spec.id()) + "): " + e.getMessage(), e);
        }
    }

    /**
     * On cgroup v1 from kiln's OOM watch of {@code kiln/<id>}; on v2 from its memory.events, which counts kills in
     * the runtime's cgroup below. Both outlive the runtime's cgroup; a sandbox started by an earlier kilnd has no
     * watch on v1, and reports false.
     */
    boolean oomKilled(SandboxSpec spec) {
        SandboxCgroup cgroup = cgroups.get(spec.id());
        return (cgroup != null && cgroup.oomEvents() > 0)
                || Cgroups.oomKills(SandboxCgroup.parentPath(spec.id())) > 0;
    }

    /** The runtime knows the container and it has not stopped (created, running, paused: all hold processes). */
    @Override
    public boolean running(SandboxSpec spec) {
        Result state = run(command(spec, "state", spec.id()));
        return state.code == 0 && !state.out.contains("\"stopped\"");
    }

    @Override
    public void cleanup(SandboxSpec spec, boolean removeFiles) {
        deleteRuntimeState(spec);
        SandboxCgroup cgroup = cgroups.remove(spec.id());
        if (cgroup != null) {
            cgroup.close(); // before the rmdir, which would signal it
        }
        List<Path> left = SandboxCgroup.remove(spec.id());
        if (!left.isEmpty()) {
            LOG.sandbox(spec.id()).warn("cgroups of the sandbox still in use, not removed: " + left);
        }
        OverlayRoot.unmount(spec.dir().resolve(Bundle.ROOTFS));
    }

    /** The overlay's upper directory: the kernel's own record of the sandbox's changes. */
    @Override
    public <T> T withChanges(SandboxSpec spec, Function<Path, T> work) {
        return work.apply(spec.dir().resolve("upper"));
    }

    /**
     * The bundle's {@code rootfs}: the overlay the runtime uses while the sandbox exists, or, for an exited sandbox
     * whose overlay was released, one mounted for the work and unmounted after. Writes go through the overlay (never
     * into the upper layer directly), so copy-up and whiteouts are the kernel's.
     */
    @Override
    public <T> T withRootTree(SandboxSpec spec, boolean running, Function<Path, T> work) {
        Path root = new Bundle(spec.dir()).rootfs().toAbsolutePath().normalize();
        if (Mounts.isMounted(root)) { // running, or created: the runtime's overlay is there already
            return work.apply(root);
        }
        if (running) {
            throw new KilnException(KilnException.Kind.INTERNAL, "the root of sandbox " + spec.name()
                    + " is not mounted at " + root + " although it runs");
        }
        OverlayRoot.mount(spec.imageRootfs(), spec.dir().resolve("upper"), spec.dir().resolve("work"), root,
                spec.disposable());
        try {
            return work.apply(root);
        } finally {
            OverlayRoot.unmount(root);
        }
    }

    // ---- running the runtime ----

    List<String> command(SandboxSpec spec, String... args) {
        List<String> cmd = new ArrayList<>(List.of(binary.path("the " + name() + " isolation").toString(), "--root",
                stateRoot.toString()));
        cmd.addAll(globalFlags);
        cmd.addAll(runtime.networkFlags(spec.network()));
        String seccomp = spec.settings().seccomp();
        if (runtime == OciRuntime.RUNSC && seccomp != null && !seccomp.equals("unconfined")) {
            cmd.add("--oci-seccomp"); // a profile asked for: runsc applies linux.seccomp inside its Sentry too
        }
        cmd.addAll(List.of(args));
        return cmd;
    }

    record Result(int code, String out, String err) {
        String firstLine() {
            String text = err.isBlank() ? out : err;
            return text.lines().filter(l -> !l.isBlank()).findFirst().orElse("exit " + code).strip();
        }
    }

    /**
     * {@code kill --all 9}, then {@code delete --force}, only when the runtime holds state for the sandbox (each
     * runtime call costs a fork+exec; a container that ended by itself has none left). A container still running
     * here lost its shim: runsc's forced delete alone signals only its init and then waits 5 s for the sandbox to
     * stop, where killing every process first ends it at once. runsc knows only the long flag.
     */
    private void deleteRuntimeState(SandboxSpec spec) {
        try (var entries = Files.list(stateRoot)) {
            if (entries.noneMatch(p -> p.getFileName().toString().startsWith(spec.id()))) {
                return;
            }
        } catch (IOException e) {
            // no state root yet: nothing to delete
            return;
        }
        // fails for a stopped container: nothing to kill
        run(command(spec, "kill", "--all", spec.id(), Integer.toString(OciTask.SIGKILL)));
        run(command(spec, "delete", "--force", spec.id()));
    }

    Result run(List<String> cmd) {
        try {
            Files.createDirectories(stateRoot, OwnerOnly.DIRECTORY); // runtime state: root's alone
            Process p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .start();
            FutureTask<String> out = new FutureTask<>(() -> new String(p.getInputStream().readAllBytes(),
                    StandardCharsets.UTF_8));
            Thread.ofVirtual().start(out);
            String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(COMMAND_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new KilnException(KilnException.Kind.INTERNAL, String.join(" ", cmd) + " timed out");
            }
            return new Result(p.exitValue(), out.get(), err);
        } catch (IOException | ExecutionException e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot run " + runtime.binary() + ": "
                    + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while running " + runtime.binary());
        }
    }
}
