package dev.kiln.isolation.oci;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;
import dev.kiln.isolation.Isolator;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.RunningProcess;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.SandboxStats;
import dev.kiln.isolation.shim.Shim;
import dev.kiln.isolation.shim.ShimBinary;
import dev.kiln.isolation.shim.ShimOptions;
import dev.kiln.rootfs.Mounts;

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

/**
 * The {@code container} (runc) and {@code gvisor} (runsc) isolations: one OCI bundle in the sandbox's directory
 * ({@code config.json}, an overlay of the image's tree and the sandbox's writable layer at {@code rootfs}), the
 * runtime run in the foreground under a kiln-shim, and kill/exec/ps/delete through the runtime's own commands.
 */
public final class OciIsolator implements Isolator {

    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration START_TIMEOUT = Duration.ofSeconds(20);

    private final OciRuntime runtime;
    private final Path stateRoot;
    private final List<String> globalFlags;
    /** Sandbox id to its cgroup watch, from start to cleanup. */
    private final Map<String, SandboxCgroup> cgroups = new ConcurrentHashMap<>();

    /** {@code stateRoot}: the runtime's {@code --root}; {@code globalFlags}: e.g. runsc's --platform. */
    public OciIsolator(OciRuntime runtime, Path stateRoot, List<String> globalFlags) {
        SeccompProfile.kilnDefault(); // load at daemon start, not at the first sandbox
        this.runtime = runtime;
        this.stateRoot = stateRoot;
        this.globalFlags = List.copyOf(globalFlags);
    }

    @Override
    public String name() {
        return runtime == OciRuntime.RUNC ? "container" : "gvisor";
    }

    @Override
    public String runtime() {
        return runtime.binary();
    }

    @Override
    public void create(SandboxSpec spec) {
        requireBinary();
        // start calls create again after an exit: the bundle written at create time still holds
        Bundle bundle = new Bundle(spec.dir());
        if (Files.exists(bundle.configJson())) {
            Bundle.writeEtcFiles(spec, dev.kiln.isolation.EtcFiles.hostResolvConf());
        } else {
            Bundle.write(spec, runtime);
        }
        Mounts.overlay(spec.imageRootfs(), spec.dir().resolve("upper"), spec.dir().resolve("work"), bundle.rootfs());
    }

    @Override
    public Shim start(SandboxSpec spec, Duration waitAttach) {
        deleteRuntimeState(spec); // a stale state dir from a crashed earlier run would block the name
        watchCgroup(spec);
        List<String> cmd = command(spec, "run", "--bundle", spec.dir().toString(), spec.id());
        Shim shim = Shim.launch(ShimBinary.locate(), spec.dir().resolve("main"), options(spec.process(), waitAttach,
                spec.dir().resolve("log.json")), cmd);
        if (waitAttach.isZero()) {
            awaitCreated(spec, shim);
        }
        return shim;
    }

    /**
     * As Docker's start, returns once the runtime knows the container, so a kill or exec right after start finds
     * it; or once the process already ended. Bounded: a runtime that hangs is reported by the shim's exit.
     */
    private void awaitCreated(SandboxSpec spec, Shim shim) {
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline && shim.exitStatus().isEmpty()) {
            Result state = run(command(spec, "state", spec.id()));
            // "running": the user's process runs. Not "creating"/"created" (a signal would hit the runtime's init),
            // and not "stopped" (runsc reports it while it sets up): a process that really ended is seen by the
            // loop's exit-status check instead
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

    @Override
    public void signal(SandboxSpec spec, int signal) {
        // SIGKILL goes to every process of the sandbox (--all): gVisor's init may not die of a lone SIGKILL, and a
        // killed sandbox must end whatever its init was doing
        Result r = run(signal == 9 ? command(spec, "kill", "--all", spec.id(), "9")
                : command(spec, "kill", spec.id(), Integer.toString(signal)));
        if (r.code != 0) {
            throw KilnException.conflict("cannot signal sandbox " + spec.name() + ": " + r.firstLine());
        }
    }

    /** The runtime's own freezer ({@code runc pause}: the cgroup freezer, returning once every process is frozen). */
    @Override
    public void pause(SandboxSpec spec) {
        Result r = run(command(spec, "pause", spec.id()));
        if (r.code != 0) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot pause sandbox " + spec.name() + ": "
                    + r.firstLine());
        }
    }

    @Override
    public void resume(SandboxSpec spec) {
        Result r = run(command(spec, "resume", spec.id()));
        if (r.code != 0) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot resume sandbox " + spec.name() + ": "
                    + r.firstLine());
        }
    }

    @Override
    public RunningProcess exec(SandboxSpec spec, String execId, ProcessSpec process, Duration waitAttach) {
        // short names: the shim's attach.sock must fit a unix socket path (108 bytes) under the sandbox's dir
        Path dir = spec.dir().resolve("x").resolve(execId.length() > 12 ? execId.substring(0, 12) : execId);
        Path processJson = dir.resolve("process.json");
        try {
            Files.createDirectories(dir);
            // the exec's environment may carry secrets: owner-only, as the sandbox's config.json
            OwnerOnly.write(processJson, new ObjectMapper().writeValueAsBytes(RuntimeSpec.process(process)));
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot write " + processJson + ": " + e.getMessage(), e);
        }
        List<String> cmd = command(spec, "exec", "--process", processJson.toString(), spec.id());
        return Shim.launch(ShimBinary.locate(), dir, options(process, waitAttach, dir.resolve("log.json")), cmd);
    }

    private static ShimOptions options(ProcessSpec p, Duration waitAttach, Path log) {
        ShimOptions o = ShimOptions.defaults().withTty(p.tty()).withStdin(p.stdin()).withLog(log);
        return waitAttach.isZero() ? o : o.withWaitAttach(waitAttach);
    }

    @Override
    public String top(SandboxSpec spec) {
        Result r = run(command(spec, "ps", spec.id()));
        if (r.code != 0) {
            throw KilnException.conflict("cannot list processes of " + spec.name() + ": " + r.firstLine());
        }
        return r.out;
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
            System.err.println("kilnd: cannot watch sandbox " + spec.id() + " for OOM kills (cgroup "
                    + SandboxCgroup.parentPath(spec.id()) + "): " + e.getMessage());
        }
    }

    /**
     * On cgroup v1 from kiln's OOM watch of {@code kiln/<id>}; on v2 from its memory.events, which counts kills in
     * the runtime's cgroup below. Both outlive the runtime's cgroup; a sandbox started by an earlier kilnd has no
     * watch on v1, and reports false.
     */
    @Override
    public boolean oomKilled(SandboxSpec spec) {
        SandboxCgroup cgroup = cgroups.get(spec.id());
        return (cgroup != null && cgroup.oomEvents() > 0)
                || Cgroups.oomKills(SandboxCgroup.parentPath(spec.id())) > 0;
    }

    /** {@code runc state}'s pid is the container's init (the workload); {@code runsc state}'s is the Sentry. */
    @Override
    public List<Long> frontPids(SandboxSpec spec) {
        Result r = run(command(spec, "state", spec.id()));
        if (r.code != 0) {
            return List.of();
        }
        try {
            long pid = new ObjectMapper().readTree(r.out).path("pid").asLong(0);
            return pid > 0 && ProcessHandle.of(pid).isPresent() ? List.of(pid) : List.of();
        } catch (IOException e) {
            return List.of();
        }
    }

    @Override
    public SandboxStats stats(SandboxSpec spec) {
        return Cgroups.stats(RuntimeSpec.cgroupsPath(spec.id()));
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
            System.err.println("kilnd: cgroups of sandbox " + spec.id() + " still in use, not removed: " + left);
        }
        Mounts.unmount(spec.dir().resolve(Bundle.ROOTFS), false);
    }

    // ---- running the runtime ----

    private void requireBinary() {
        if (!Files.isExecutable(Path.of("/usr/bin", runtime.binary()))
                && !Files.isExecutable(Path.of("/usr/sbin", runtime.binary()))
                && !Files.isExecutable(Path.of("/usr/local/bin", runtime.binary()))
                && !Files.isExecutable(Path.of("/usr/local/sbin", runtime.binary()))) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "the " + name() + " isolation needs "
                    + runtime.binary() + ", which is not installed (apt-get install " + runtime.binary() + ")");
        }
    }

    private List<String> command(SandboxSpec spec, String... args) {
        List<String> cmd = new ArrayList<>(List.of(runtime.binary(), "--root", stateRoot.toString()));
        cmd.addAll(globalFlags);
        cmd.addAll(runtime.networkFlags(spec.network()));
        cmd.addAll(List.of(args));
        return cmd;
    }

    private record Result(int code, String out, String err) {
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
        run(command(spec, "kill", "--all", spec.id(), "9")); // fails for a stopped container: nothing to kill
        run(command(spec, "delete", "--force", spec.id()));
    }

    private Result run(List<String> cmd) {
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
