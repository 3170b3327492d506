package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.isolation.ExitStatus;
import dev.kiln.isolation.Isolation;
import dev.kiln.isolation.Isolator;
import dev.kiln.isolation.Isolators;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.RunningProcess;
import dev.kiln.isolation.Resources;
import dev.kiln.isolation.SandboxNetwork;
import dev.kiln.isolation.SandboxOptions;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.SandboxStats;
import dev.kiln.isolation.SandboxTask;
import dev.kiln.network.Attachment;
import dev.kiln.network.NetworkMode;
import dev.kiln.network.Networks;
import dev.kiln.rootfs.Trash;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The sandbox life-cycle: created → running → exited → removed, for every isolation through {@link Isolator} and
 * the {@link SandboxTask} of each run. Transitions of one sandbox are serialised by a per-sandbox lock and recorded
 * in SQLite before they are reported; a watcher per run turns the task's end into the exited state (and removes
 * {@code --rm} sandboxes).
 */
public final class Sandboxes implements AutoCloseable {
    private static final KilnLog LOG = KilnLog.of(Sandboxes.class);

    /** How long a started process waits for the first attach client before it starts anyway. */
    static final Duration ATTACH_WAIT = Duration.ofSeconds(10);

    private final Images images;
    private final SandboxStore store;
    private final Path sandboxesDir;
    /** Where removed sandboxes' directories go to be deleted after the answer. */
    private final Trash trash;
    /** Wakes the waits for an exit's record and a --rm sandbox's removal. */
    private final StoreChanges changes = new StoreChanges();
    private final Isolators isolators;
    private final String defaultIsolation;
    private final Map<String, Object> locks = new ConcurrentHashMap<>();
    private final Map<String, Boolean> watched = new ConcurrentHashMap<>();
    private final ExecutorService watchers = Executors.newVirtualThreadPerTaskExecutor();
    private final Restarts restarts = new Restarts(this::dir, id -> start(id, false, true), watchers);
    private final Events events;
    private final SandboxNetworking networking;
    private final dev.kiln.engine.volume.Volumes volumes;
    private final HealthChecks health;

    Sandboxes(Images images, SandboxStore store, Path sandboxesDir, Isolators isolators,
              String defaultIsolation, Events events, Networks networks, dev.kiln.engine.volume.Volumes volumes) {
        this.volumes = volumes;
        this.networking = new SandboxNetworking(networks, images, store, this::dir, isolators);
        this.images = images;
        this.store = store;
        this.sandboxesDir = sandboxesDir;
        this.trash = Trash.open(sandboxesDir.resolveSibling("trash"));
        this.isolators = isolators;
        this.defaultIsolation = defaultIsolation;
        this.events = events;
        this.health = new HealthChecks(this, images, events, watchers);
    }

    // ---- create ----

    public Sandbox create(SandboxConfig r) {
        RequestCheck.create(r);
        Isolator isolator = isolators.select(r.isolation(), r.runtime(), defaultIsolation);
        isolator.availability().require();
        String isolation = isolator.isolation().name();
        if (r.name() != null && !Names.VALID.matcher(r.name()).matches()) {
            throw KilnException.invalid("invalid sandbox name \"" + r.name()
                    + "\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        }
        isolators.check(isolator, new SandboxOptions(r.runtime(), r.kernel(), r.diskSize(),
                SandboxNetwork.Mode.valueOf(networking.mode(r, isolation).kind().name()), r.settings()));
        networking.check(r, isolation);
        Image image = images.resolve(r.image());
        Path rootfs = images.rootfs(image);
        String id = Names.newId();
        String hostname = r.hostname() != null ? r.hostname() : id.substring(0, 12);
        ProcessSpec process = SandboxProcess.resolve(images.config(image), r, rootfs, hostname);
        r = SandboxMounts.prepare(r, volumes, images.config(image), rootfs, isolator.isolation());
        Sandbox s = new Sandbox(id, r.name() != null ? r.name() : Names.randomName(), r.image(),
                image.id().toString(), isolation, SandboxState.CREATED, r, process, System.currentTimeMillis(),
                0, 0, null, false, 0, 0);
        store.insert(s);
        try {
            Files.createDirectories(dir(s), dev.kiln.OwnerOnly.DIRECTORY); // holds its root fs: root's alone
            isolator.create(spec(s));
        } catch (IOException | RuntimeException e) {
            discard(s, isolator);
            SandboxMounts.removeAnonymous(s, volumes);
            throw e instanceof IOException io ? new UncheckedIOException(io) : (RuntimeException) e;
        }
        events.emit(s, "create");
        return s;
    }

    /** The sandbox's --network, or its isolation's default (see {@link SandboxNetworking#mode}). */
    public NetworkMode networkMode(Sandbox s) {
        return networking.mode(s.config(), s.isolation());
    }

    /** The sandbox's place on its network (bridge or user) while it runs. */
    public Optional<Attachment> network(Sandbox s) {
        return networking.attachment(s);
    }

    /**
     * {@code network connect}: the sandbox joins network {@code ref} too (at once if it runs, at each start from
     * now on), known there also as {@code aliases}, at address {@code ip} if given (null: the next free one).
     */
    public void connect(String ref, String network, List<String> aliases, String ip) {
        Sandbox s = store.find(ref);
        String name = networking.networkName(network);
        synchronized (lock(s.id())) {
            networking.connect(store.find(s.id()), name, aliases, ip);
        }
        events.emit(s, "connect");
    }

    /** {@code network disconnect}: off a network it joined with connect. */
    public void disconnect(String ref, String network) {
        Sandbox s = store.find(ref);
        String name = networking.networkName(network);
        synchronized (lock(s.id())) {
            networking.disconnect(store.find(s.id()), name);
        }
        events.emit(s, "disconnect");
    }

    /** The networks the sandbox joined after its first, each with its place there while it runs. */
    public List<Joined> joined(Sandbox s) {
        return networking.connections(s).stream().map(c -> new Joined(c.network(), c.aliases(), c.ip(),
                s.running() ? networking.attachment(s, c) : Optional.empty())).toList();
    }

    /** The sandbox's place on {@code network} while it runs, whether its first network or one it joined. */
    public Optional<Attachment> networkOn(Sandbox s, String network) {
        Optional<Attachment> first = network(s).filter(a -> a.network().equals(network));
        return first.isPresent() ? first : joined(s).stream().filter(j -> j.network().equals(network)).findFirst()
                .flatMap(Joined::attachment);
    }

    /** A network joined with connect: its name, the sandbox's aliases and asked-for address, its attachment. */
    public record Joined(String network, List<String> aliases, String ip, Optional<Attachment> attachment) {
    }

    private Isolator isolator(String isolation) {
        return isolators.named(isolation);
    }

    /** What the sandbox's isolation is and can do. */
    Isolation isolation(Sandbox s) {
        return isolator(s.isolation()).isolation();
    }

    // ---- start / stop / kill ----

    /** Starts a created or exited sandbox; with {@code forAttach} the process waits for the first attach client. */
    public SandboxTask start(String ref, boolean forAttach) {
        return start(ref, forAttach, false);
    }

    /** {@code kiln start --checkpoint NAME}: from that checkpoint of the sandbox ({@link Checkpoints}). */
    public SandboxTask start(String ref, boolean forAttach, String checkpoint) {
        return start(ref, forAttach, false, checkpoint);
    }

    private SandboxTask start(String ref, boolean forAttach, boolean byPolicy) {
        return start(ref, forAttach, byPolicy, null);
    }

    /** {@code byPolicy}: kilnd starts it again by its restart policy (counted in RestartCount), not its user. */
    private SandboxTask start(String ref, boolean forAttach, boolean byPolicy, String checkpoint) {
        Sandbox s = store.find(ref);
        synchronized (lock(s.id())) {
            s = store.find(s.id());
            if (byPolicy && (s.state() != SandboxState.EXITED || restarts.isStoppedByUser(s))) {
                return null; // started, removed, being removed or stopped by its user meanwhile
            }
            if (!byPolicy) {
                restarts.startedByUser(s);
            }
            if (s.paused()) {
                throw KilnException.conflict("cannot start a paused sandbox " + s.name() + ", try unpause instead");
            }
            if (s.state() == SandboxState.RUNNING) {
                SandboxTask task = task(s);
                Optional<ExitStatus> ended = task.exitStatus();
                if (ended.isEmpty() && task.alive()) {
                    if (checkpoint != null) throw KilnException.conflict("sandbox " + s.name() + " is running: "
                            + "stop it before starting it from a checkpoint");
                    return task;
                }
                // the process ended a moment ago (or its monitor died) and its watcher has not recorded it yet:
                // record it now, then start
                if (ended.isPresent()) {
                    exited(s.id(), s.shimPid(), ended.get(), task::oomKilled);
                } else {
                    lost(s.id(), s.shimPid());
                }
                s = store.find(s.id());
            }
            if (s.state() == SandboxState.REMOVING) {
                throw KilnException.conflict("sandbox " + s.name() + " is being removed");
            }
            Isolator isolator = isolator(s.isolation());
            SandboxSpec spec = spec(s);
            dev.kiln.engine.process.CommandCheck.verify(s.process(), spec.imageRootfs(), dir(s).resolve("upper"));
            if (networking.recorded(s)) {
                networking.attach(s);
                spec = spec(s); // now with the address, for /etc/hosts and the guest
            }
            SandboxTask task;
            try {
                isolator.create(spec);
                Duration wait = forAttach ? ATTACH_WAIT : Duration.ZERO;
                task = checkpoint == null ? isolator.start(spec, wait)
                        : isolator.restore(spec, Checkpoints.existing(s, dir(s), checkpoint), wait);
            } catch (RuntimeException e) {
                try {
                    isolator.cleanup(spec, false);
                } finally {
                    networking.detach(s);
                }
                throw e;
            }
            store.started(s.id(), task.pid(), System.currentTimeMillis());
            if (byPolicy) {
                store.countRestart(s.id());
            }
            events.emit(s, "start");
            watch(s.id(), task);
            return task;
        }
    }

    public void kill(String ref, int signal) {
        Sandbox s = store.find(ref);
        SandboxTask task = s.running() ? task(s) : null;
        if (task == null || task.exitStatus().isPresent() || endedIfLost(s, task)) {
            throw KilnException.conflict("sandbox " + s.name() + " is not running");
        }
        if (List.of(Signals.SIGKILL, 15, 2, 3).contains(signal)) {
            restarts.stoppedByUser(s); // as Docker: a container the user killed is not restarted by its policy
        }
        thaw(s, task);
        task.kill(signal);
        events.emit(s, "kill");
        if (signal == Signals.SIGKILL) {
            // Docker's kill returns once the container no longer runs: a remove right after must not find it running
            awaitEnd(s, task, Duration.ofSeconds(10));
            awaitRecorded(s.id(), Duration.ofSeconds(10));
        }
    }

    /** Docker's stop: the stop signal, then SIGKILL after {@code timeout}; returns once the sandbox has exited. */
    public void stop(String ref, Duration timeout) {
        Sandbox s = store.find(ref);
        synchronized (lock(s.id())) { // a policy start in flight holds the lock: the stop then sees it running
            restarts.stoppedByUser(s); // also cancels a restart its policy has scheduled
            s = store.find(s.id());
        }
        if (!s.running()) {
            return;
        }
        SandboxTask task = task(s);
        thaw(s, task);
        try {
            task.kill(stopSignal(s));
        } catch (KilnException e) {
            // the process may have exited between the check and the signal; the wait below tells
        }
        if (!awaitEnd(s, task, timeout)) {
            try {
                task.kill(Signals.SIGKILL);
            } catch (KilnException e) {
                // as above
            }
            awaitEnd(s, task, Duration.ofSeconds(30));
        }
        awaitRecorded(s.id(), Duration.ofSeconds(10));
        synchronized (lock(s.id())) { // after the watcher's "die" (emitted under this lock with the exit's record)
            events.emit(s, "stop");
        }
    }

    public void restart(String ref, Duration timeout) {
        Sandbox s = store.find(ref);
        stop(s.id(), timeout);
        store.countRestart(s.id());
        start(s.id(), false);
        events.emit(s, "restart");
    }

    // ---- update ----

    /**
     * New limits and restart policy: a running sandbox's limits change at once through its task (or the isolation
     * refuses, saying what it can do); a stopped one's take effect at its next start.
     */
    public void update(String ref, SandboxUpdate u) {
        Sandbox s = store.find(ref);
        synchronized (lock(s.id())) {
            s = store.find(s.id());
            SandboxConfig c = s.config();
            if (u.restart() != null && !u.restart().none() && c.autoRemove()) {
                throw KilnException.invalid("Restart policy cannot be updated because AutoRemove is enabled for the "
                        + "container");
            }
            Resources now = new Resources(c.nanoCpus(), c.memory(), c.pidsLimit());
            Resources next = u.over(now);
            if (s.running() && !next.equals(now)) {
                task(s).update(next);
            }
            store.config(s.id(), u.applyTo(c), s.process());
        }
        events.emit(s, "update");
    }

    // ---- pause ----

    /** Freezes every process of a running sandbox ({@link SandboxTask#pause}); Docker's pause. */
    public void pause(String ref) {
        Sandbox s = store.find(ref);
        synchronized (lock(s.id())) {
            s = store.find(s.id());
            if (s.paused()) {
                throw KilnException.conflict("sandbox " + s.name() + " is already paused");
            }
            if (!s.running()) {
                throw KilnException.conflict("sandbox " + s.name() + " is not running");
            }
            task(s).pause();
            store.paused(s.id(), true);
        }
        events.emit(s, "pause");
    }

    public void unpause(String ref) {
        Sandbox s = store.find(ref);
        synchronized (lock(s.id())) {
            s = store.find(s.id());
            if (!s.paused()) {
                throw KilnException.conflict("sandbox " + s.name() + " is not paused");
            }
            task(s).resume();
            store.paused(s.id(), false);
        }
        events.emit(s, "unpause");
    }

    /**
     * Before a signal to a paused sandbox (kill, stop, rm -f): unpaused first, as Docker resumes a paused container it
     * signals, so the signal is acted on (a frozen process cannot die, a stopped VM reads no request).
     */
    private void thaw(Sandbox s, SandboxTask task) {
        if (!s.paused()) {
            return;
        }
        synchronized (lock(s.id())) {
            if (store.byId(s.id()).map(Sandbox::paused).orElse(false)) {
                task.resume();
                store.paused(s.id(), false);
                events.emit(s, "unpause");
            }
        }
    }

    private int stopSignal(Sandbox s) {
        try {
            return Signals.number(SandboxProcess.stopSignal(images.configOf(Digest.parse(s.imageId()))));
        } catch (KilnException e) {
            return Signals.SIGTERM; // the image was removed with rmi -f: Docker's default
        }
    }

    // ---- exit ----

    /** One watcher per run: a run is its task, so a restarted sandbox's new run is watched apart from the last. */
    private void watch(String id, SandboxTask task) {
        String run = id + ":" + task.pid();
        if (watched.putIfAbsent(run, Boolean.TRUE) != null) {
            return;
        }
        health.started(id, task.pid());
        watchers.submit(() -> {
            try {
                ExitStatus status = task.await(Duration.ofDays(3650)).orElseThrow();
                exited(id, task.pid(), status, task::oomKilled);
            } catch (RunningProcess.Gone e) {
                lost(id, task.pid());
            } catch (RuntimeException e) {
                LOG.sandbox(id).error("watching the sandbox failed: " + e.getMessage(), e);
            } finally {
                watched.remove(run);
            }
        });
    }

    /**
     * Records the end of the run marked {@code runPid} (its task's {@link SandboxTask#pid}). A run that is not the
     * sandbox's current one is ignored: the watcher of a run that a start has already recorded and replaced must not
     * end the new run. {@code oomKilled} is asked only of a run that ended by SIGKILL.
     */
    private void exited(String id, long runPid, ExitStatus status, java.util.function.BooleanSupplier oomKilled) {
        Sandbox s;
        synchronized (lock(id)) {
            Optional<Sandbox> found = store.byId(id);
            if (found.isEmpty() || !found.get().running() || found.get().shimPid() != runPid) {
                return;
            }
            s = found.get();
            Isolator isolator = isolator(s.isolation());
            SandboxSpec spec = spec(s);
            // the kernel's OOM notice alone is not proof (a v1 eventfd has fired for calm sandboxes on a busy
            // host); an OOM kill always ends the main process with SIGKILL, so both must hold
            boolean killed = status.signal() == Signals.SIGKILL || status.exitCode() == 128 + Signals.SIGKILL;
            boolean oom = killed && oomKilled.getAsBoolean();
            try {
                isolator.cleanup(spec, false);
            } finally {
                // the process is gone whatever the clean-up did: ps must not show it up (rm retries the clean-up)
                detachQuietly(s);
                store.exited(id, status.exitCode(), oom, status.finishedAt().toEpochMilli());
                changes.changed();
            }
            // inside the lock: a stop that saw the exit recorded emits its "stop" only after this (Docker's order)
            events.emit(s, "die");
        }
        if (s.config().autoRemove()) {
            remove(id, true, true); // Docker's --rm takes the anonymous volumes along
        } else {
            restarts.exited(s, status.exitCode(), status.finishedAt().toEpochMilli());
        }
    }

    /**
     * Ends the run whose shim died without recording an exit (killed, or crashed): whatever of the sandbox still runs
     * is killed and everything it holds released, as for any exit (see {@link #exited}). The status follows
     * containerd and Docker: when the workload still ran and kiln killed it, 137 (SIGKILL), as containerd reports a
     * task whose shim died (its runc shim's clean-up runs {@code runc delete --force} and answers 128 + SIGKILL); when
     * it had already ended unrecorded, 255, as Docker records a container whose exit status is unknown at restore.
     */
    private void lost(String id, long shimPid) {
        ExitStatus status;
        synchronized (lock(id)) {
            Optional<Sandbox> found = store.byId(id);
            if (found.isEmpty() || !found.get().running() || found.get().shimPid() != shimPid) {
                return;
            }
            boolean running = isolator(found.get().isolation()).running(spec(found.get()));
            status = running ? new ExitStatus(128 + Signals.SIGKILL, Signals.SIGKILL, java.time.Instant.now())
                    : new ExitStatus(255, 0, java.time.Instant.now());
            LOG.sandbox(id).warn("the monitor of the sandbox (pid " + shimPid + ") died without "
                    + "recording an exit; " + (running ? "its processes are killed (recorded as 137)"
                    : "its process had ended (recorded as 255)"));
        }
        // checks again that the run is still the current one; kiln killed it, so not the OOM killer
        exited(id, shimPid, status, () -> false);
    }

    /** If the sandbox's monitor is gone without a record, ends its run ({@link #lost}) and returns true. */
    private boolean endedIfLost(Sandbox s, SandboxTask task) {
        if (task.alive() || task.exitStatus().isPresent()) {
            return false;
        }
        lost(s.id(), s.shimPid());
        return true;
    }

    /**
     * {@link SandboxTask#await}, ending the run as {@link #lost} when its monitor turns out to be dead without a
     * record; true once the run has ended either way.
     */
    boolean awaitEnd(Sandbox s, SandboxTask task, Duration timeout) {
        try {
            return task.await(timeout).isPresent();
        } catch (RunningProcess.Gone e) {
            lost(s.id(), task.pid());
            return true;
        }
    }

    /** The watcher records the exit a moment after the shim wrote it; callers that report it wait for that. */
    void awaitRecorded(String id, Duration timeout) {
        changes.await(() -> !store.byId(id).map(Sandbox::running).orElse(false),
                System.nanoTime() + timeout.toNanos());
    }

    /**
     * Before a client is told a main process's exit code: waits (bounded) until the exit is recorded, and for a --rm
     * sandbox until it is removed, so an inspect or a reuse of the name right after {@code run} sees the outcome.
     * Returns the recorded exit code, -1 if none was recorded in time.
     */
    public int awaitExitRecorded(String id) {
        awaitRecorded(id, Duration.ofSeconds(10));
        int code = store.byId(id).filter(s -> !s.running()).map(Sandbox::exitCode).orElse(-1);
        awaitAutoRemoval(id);
        return code;
    }

    /**
     * {@link #awaitExitRecorded(String)} for the caller that streamed {@code run} and has just read its exit frame:
     * the shim wrote exit.json before that frame, so the exit is recorded here at once (and a --rm sandbox removed)
     * rather than when the run's watcher wakes (inotify, the JDK's watch service, then the watcher's thread: a few ms
     * more on the path of every attached run, more on a busy host; issue 17). Whichever of the two comes first
     * records it; the other finds the run ended ({@link #exited} checks under the sandbox's lock).
     */
    public int awaitExitRecorded(String id, SandboxTask run) {
        Optional<ExitStatus> status = Optional.empty();
        try {
            status = run.exitStatus();
            if (status.isPresent()) {
                exited(id, run.pid(), status.get(), run::oomKilled);
            }
        } catch (RuntimeException e) { // as the watcher would: logged, and the run's end is still awaited below
            LOG.sandbox(id).error("recording the sandbox's exit failed: " + e.getMessage(), e);
        }
        int recorded = awaitExitRecorded(id);
        // a --rm sandbox's row is gone once removed: its code is the run's
        return recorded >= 0 || status.isEmpty() ? recorded : status.get().exitCode();
    }

    /** For a --rm sandbox that exited: waits (bounded) until the watcher has removed it. */
    public void awaitAutoRemoval(String id) {
        changes.await(() -> store.byId(id).map(s -> !s.config().autoRemove()).orElse(true),
                System.nanoTime() + Duration.ofSeconds(30).toNanos());
    }

    /** Blocks until the sandbox is not running (Docker's wait condition "not-running"), returns its exit code. */
    public int await(String ref, Duration timeout) {
        Sandbox s = store.find(ref);
        if (s.running()) {
            awaitEnd(s, task(s), timeout);
            awaitRecorded(s.id(), Duration.ofSeconds(10));
        }
        return store.byId(s.id()).map(x -> x.exitCode() == null ? 0 : x.exitCode()).orElse(s.exitCode() == null
                ? 0 : s.exitCode());
    }

    // ---- remove ----

    public void remove(String ref, boolean force) {
        remove(ref, force, false);
    }

    /** Docker's rm; with {@code removeVolumes} ({@code rm -v}) its anonymous volumes go too. */
    public void remove(String ref, boolean force, boolean removeVolumes) {
        Sandbox s = store.find(ref);
        Isolator isolator = isolator(s.isolation());
        if (force) {
            restarts.stoppedByUser(s);
        }
        if (s.running()) {
            if (!force) {
                throw KilnException.conflict("sandbox " + s.name() + " is running: stop it first or use rm -f");
            }
            try {
                thaw(s, task(s));
                task(s).kill(Signals.SIGKILL);
            } catch (KilnException e) {
                // it exited between the check and the signal (docker kill then rm -f, as Testcontainers stops), or
                // its monitor is gone; the wait below tells
            }
            endForRemoval(s);
            awaitRecorded(s.id(), Duration.ofSeconds(10));
            if (store.byId(s.id()).map(Sandbox::running).orElse(false)) {
                throw KilnException.conflict("cannot remove sandbox " + s.name() + ": it is still running after "
                        + "SIGKILL (try again)");
            }
        }
        synchronized (lock(s.id())) {
            Optional<Sandbox> now = store.byId(s.id());
            if (now.isEmpty() || !store.markRemoving(s.id())) {
                return;
            }
            discard(now.get(), isolator);
        }
        if (removeVolumes) {
            SandboxMounts.removeAnonymous(s, volumes);
        }
        health.forget(s.id());
        locks.remove(s.id());
        events.emit(s, "destroy");
    }

    /** How long rm -f waits for the monitor to record the SIGKILLed run's end before it kills the monitor itself. */
    private static final Duration REMOVAL_WAIT = Duration.ofSeconds(10);

    /**
     * rm -f of a running sandbox after its SIGKILL: waits for the run's end; a monitor that is dead, left no files,
     * or records nothing in time (stopped, hung) is killed and the run ended as {@link #lost}, so that a removal never
     * fails on the state of a monitor.
     */
    private void endForRemoval(Sandbox s) {
        SandboxTask task;
        try {
            task = task(s);
        } catch (KilnException e) {
            lost(s.id(), s.shimPid());
            return;
        }
        if (!awaitEnd(s, task, REMOVAL_WAIT)) {
            LOG.sandbox(s.id()).warn("the monitor of the sandbox (pid " + task.pid() + ") recorded no "
                    + "exit " + REMOVAL_WAIT.toSeconds() + " s after SIGKILL: killing it");
            task.killMonitor();
            awaitEnd(s, task, Duration.ofSeconds(5));
        }
    }

    private void discard(Sandbox s, Isolator isolator) {
        try {
            isolator.cleanup(spec(s), true);
        } finally {
            detachQuietly(s);
            trash.discard(dir(s)); // deleted after the answer
            store.delete(s.id());
            changes.changed();
        }
    }

    /** What a prune removed, and the bytes on disk that freed. */
    public record Pruned(List<String> removed, long spaceReclaimed) {
    }

    public Pruned prune() {
        List<String> removed = new java.util.ArrayList<>();
        long freed = 0;
        for (Sandbox s : store.all()) {
            if (s.state() == SandboxState.EXITED || s.state() == SandboxState.CREATED) {
                long bytes = DiskUsage.of(dir(s));
                remove(s.id(), false);
                removed.add(s.id());
                freed += bytes;
            }
        }
        return new Pruned(removed, freed);
    }

    public void rename(String ref, String name) {
        if (!Names.VALID.matcher(name).matches()) {
            throw KilnException.invalid("invalid sandbox name \"" + name + "\"");
        }
        Sandbox s = store.find(ref);
        store.rename(s.id(), name);
        events.emit(s, "rename");
    }

    // ---- queries ----

    public List<Sandbox> list() {
        return store.all();
    }

    public Sandbox get(String ref) {
        return store.find(ref);
    }

    /** The sandbox with exactly this id; empty once it has been removed. */
    Optional<Sandbox> byId(String id) {
        return store.byId(id);
    }

    public boolean usesImage(Digest imageId) {
        return store.all().stream().anyMatch(s -> s.imageId().equals(imageId.toString()));
    }

    public String top(String ref) {
        return task(running(ref)).top();
    }

    public SandboxStats stats(String ref) {
        return task(running(ref)).stats();
    }

    /** The host pids of a running sandbox's front processes ({@link SandboxTask#frontPids}), for kiln audit. */
    public List<Long> frontPids(String ref) {
        return task(running(ref)).frontPids();
    }

    /** Its restart policy will start it again after the back-off (Docker's {@code restarting}); not while it runs. */
    public boolean restarting(Sandbox s) {
        return !s.running() && s.state() != SandboxState.REMOVING && restarts.pending(s.id())
                && !restarts.isStoppedByUser(s);
    }

    /** State.Health of the sandbox's current or last run; empty without a health check. */
    public Optional<HealthChecks.Report> health(Sandbox s) {
        return health.report(s.id());
    }

    /** The task of the sandbox's last run (running or not), for attach and logs; not found if it never started. */
    public SandboxTask task(Sandbox s) {
        return isolator(s.isolation()).adopt(spec(s));
    }

    public Path logFile(Sandbox s) {
        return spec(s).log();
    }

    /** Runs {@code work} on the host side of the sandbox's root tree (the caller holds it still). */
    <T> T withRootTree(Sandbox s, boolean running, boolean write, java.util.function.Function<Path, T> work) {
        return isolator(s.isolation()).withRootTree(spec(s), running, write, work);
    }

    /**
     * Runs {@code work} on what the sandbox changed (its isolator's withChanges): commit and build. A running sandbox
     * is paused meanwhile, as docker commit pauses, so the changes are read at one moment.
     */
    public <T> T withChanges(String ref, java.util.function.Function<Path, T> work) {
        Sandbox s = store.find(ref);
        return locked(s.id(), () -> {
            Sandbox now = store.find(s.id());
            if (!now.running()) {
                return isolator(now.isolation()).withChanges(spec(now), work);
            }
            SandboxTask task = task(now);
            task.pause();
            try {
                return isolator(now.isolation()).withChanges(spec(now), work);
            } finally {
                task.resume();
            }
        });
    }

    /** The runtime binary or VMM of the sandbox, as inspect shows it (Firecracker or QEMU for a vm). */
    public String runtimeOf(Sandbox s) {
        return isolator(s.isolation()).runtime(s.config().runtime());
    }

    /** What the sandbox's isolation adds to inspect's HostConfig (a vm: its VMM's jail). */
    public Map<String, Object> isolationDetails(Sandbox s) {
        return isolator(s.isolation()).inspect(spec(s));
    }

    /**
     * The guest kernel's console log of the sandbox's last boot; empty before its first. Refused for isolations that
     * boot no kernel.
     */
    public Optional<Path> bootLog(Sandbox s) {
        if (isolator(s.isolation()).guestKernels().isEmpty()) {
            throw KilnException.invalid("sandbox " + s.name() + " boots no kernel (" + s.isolation()
                    + " isolation): --boot is for the " + isolators.names(i -> i.guestKernels().isPresent())
                    + " isolation");
        }
        return s.started() == 0 ? Optional.empty() : task(s).bootLog();
    }

    private Sandbox running(String ref) {
        Sandbox s = store.find(ref);
        if (!s.running()) {
            throw KilnException.conflict("sandbox " + s.name() + " is not running");
        }
        return s;
    }

    // ---- exec ----

    public RunningProcess exec(String ref, String execId, ExecConfig r) {
        RequestCheck.exec(r);
        Sandbox s = running(ref);
        if (s.paused()) {
            throw KilnException.conflict("sandbox " + s.name() + " is paused, unpause it before exec");
        }
        Path rootfs = images.rootfsPath(Digest.parse(s.imageId()));
        ProcessSpec p = SandboxProcess.resolveExec(s.process(), r, rootfs);
        dev.kiln.engine.process.CommandCheck.verify(p, rootfs, dir(s).resolve("upper"));
        events.emit(s, "exec_start");
        return task(s).exec(execId, p, r.detach() ? Duration.ZERO : ATTACH_WAIT);
    }

    // ---- recovery ----

    /**
     * After a daemon (re)start: sandboxes whose task still runs are watched again; those whose monitor is gone are
     * marked exited with the status it recorded (or, if it recorded none, as {@link #lost}: what still runs is
     * killed) and everything they held released. One sandbox that cannot be recovered does not stop the others.
     */
    public void reconcile() {
        List<Sandbox> stopped = store.all().stream().filter(s -> s.state() == SandboxState.EXITED).toList();
        for (Sandbox s : store.all()) {
            try {
                reconcile(s);
            } catch (RuntimeException e) {
                LOG.sandbox(s.id()).error("cannot recover the sandbox: " + e.getMessage(), e);
            }
        }
        restarts.daemonStarted(stopped); // those that ended while kilnd was down were scheduled by their exit
    }

    private void reconcile(Sandbox s) {
        switch (s.state()) {
            case RUNNING, PAUSED -> {
                SandboxTask task;
                try {
                    task = task(s);
                } catch (KilnException e) {
                    lost(s.id(), s.shimPid()); // its files are gone with it
                    return;
                }
                Optional<ExitStatus> ended = task.exitStatus();
                if (ended.isPresent() && !task.alive()) {
                    // ended while kilnd was down: recorded before kilnd serves
                    exited(s.id(), s.shimPid(), ended.get(), task::oomKilled);
                } else if (task.alive()) {
                    watch(s.id(), task);
                } else {
                    lost(s.id(), s.shimPid());
                }
            }
            case REMOVING -> discard(s, isolator(s.isolation()));
            default -> detachQuietly(s); // a crash between CNI ADD and the start, or during an exit
        }
    }

    // ---- helpers ----

    /** Detach on a path that must go on (exit, removal, recovery): a failure is reported, not thrown. */
    private void detachQuietly(Sandbox s) {
        try {
            networking.detach(s);
        } catch (RuntimeException e) {
            LOG.sandbox(s.id()).warn("cannot take the sandbox off the kiln network: " + e.getMessage(), e);
        }
    }

    /** The sandbox's hostname: {@code --hostname}, else its short id (Docker's). */
    static String hostname(Sandbox s) {
        return s.config().hostname() != null ? s.config().hostname() : s.shortId();
    }

    SandboxSpec spec(Sandbox s) {
        SandboxConfig r = s.config();
        Map<String, String> labels = r.labels() == null ? Map.of() : r.labels();
        return new SandboxSpec(s.id(), s.name(), hostname(s), s.process(),
                images.rootfsPath(Digest.parse(s.imageId())), r.readOnly(),
                new Resources(r.nanoCpus(), r.memory(), r.pidsLimit()), labels, SandboxMounts.of(r, volumes), dir(s),
                networking.of(s),
                r.kernel() == null ? null : Path.of(r.kernel()), r.diskSize(), r.runtime(), r.settings(),
                r.autoRemove());
    }

    Path dir(Sandbox s) {
        return sandboxesDir.resolve(s.shortId());
    }

    /** Runs {@code work} under the sandbox's life-cycle lock: no start, exit or removal of it meanwhile. */
    <T> T locked(String id, java.util.function.Supplier<T> work) {
        synchronized (lock(id)) {
            return work.get();
        }
    }

    /** Checkpoints of sandboxes ({@code kiln checkpoint}, docs/checkpoint.md). */
    public Checkpoints checkpoints() {
        return new Checkpoints(this, isolators, restarts::stoppedByUser, events);
    }

    Object lock(String id) {
        return locks.computeIfAbsent(id, k -> new Object());
    }

    @Override
    public void close() {
        watchers.shutdownNow();
    }
}
