package dev.kiln.containerd;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.Any;
import com.google.protobuf.Empty;
import dev.kiln.containerd.wire.events.ForwardRequest;
import dev.kiln.containerd.wire.events.TaskCreate;
import dev.kiln.containerd.wire.events.TaskDelete;
import dev.kiln.containerd.wire.events.TaskExit;
import dev.kiln.containerd.wire.events.TaskIO;
import dev.kiln.containerd.wire.events.TaskStart;
import dev.kiln.containerd.wire.options.Options;
import dev.kiln.containerd.wire.task.ConnectRequest;
import dev.kiln.containerd.wire.task.ConnectResponse;
import dev.kiln.containerd.wire.task.CreateTaskRequest;
import dev.kiln.containerd.wire.task.CreateTaskResponse;
import dev.kiln.containerd.wire.task.DeleteRequest;
import dev.kiln.containerd.wire.task.DeleteResponse;
import dev.kiln.containerd.wire.task.KillRequest;
import dev.kiln.containerd.wire.task.ShutdownRequest;
import dev.kiln.containerd.wire.task.StartRequest;
import dev.kiln.containerd.wire.task.StartResponse;
import dev.kiln.containerd.wire.task.StateRequest;
import dev.kiln.containerd.wire.task.StateResponse;
import dev.kiln.containerd.wire.task.WaitRequest;
import dev.kiln.containerd.wire.task.WaitResponse;
import dev.kiln.containerd.wire.ttrpc.Request;
import dev.kiln.containerd.wire.ttrpc.Response;
import dev.kiln.containerd.wire.types.Mount;
import dev.kiln.containerd.wire.types.Status;
import dev.kiln.rootfs.Trees;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.DirectoryStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;

/**
 * A pre-started shim (docs/containerd.md, "The spare shim"): a JVM the launcher started earlier for one containerd,
 * idle in that containerd's pool until a pod's {@code start} claims it, then exactly a shim's {@code serve} for that
 * pod. It takes the JVM start and the first request's cold code off the pod's critical path while keeping one
 * process per pod.
 * <p>
 * The pool is a root-only directory, {@code /run/containerd/s/kiln-spare/<sha256(address)[:32]>}. An idle spare
 * shows itself there as the fifo {@code PID.idle}, which it reads. The launcher claims it with rename(2) to
 * {@code PID.claimed} (of two concurrent starts only one rename succeeds) and writes the assignment into it:
 * NUL-separated {@code key=value} pairs, the flags containerd gave {@code start} plus the bundle and the socket. The
 * spare checks the assignment as containerd would have made it (the bundle is containerd's task directory of that
 * namespace and id, the socket is the one {@code start} derives from them), re-points its stdout and stderr onto the
 * bundle's log fifo, and serves. An idle spare exits when its containerd's socket is gone or after {@link #IDLE};
 * it retires through the same rename, so it never exits under a launcher that has just claimed it.
 */
final class Spare {
    private Spare() {
    }

    static final Path POOLS = Path.of("/run/containerd/s/kiln-spare");
    /** Set when a launcher's assignment arrives: the warm-up stops then (the pod's requests must not compete). */
    private static volatile boolean claimed;
    /** The warm-up's step running now (logged by a claim that came before its end: what the pod competes with). */
    private static volatile String warmStep = "not started";
    /** Each finished warm-up step's wall time, for the spare's line in spares.log (and a claim's, if cut short). */
    private static final StringBuffer WARM_TIMES = new StringBuffer();
    private static long warmStepAt;
    /** The warm-up's thread: a spare that retires stops it and waits for it before removing its files. */
    private static volatile Thread warming;
    /** Whether this claimed spare started the next one ({@link #next}). */
    private static final AtomicBoolean NEXT_STARTED = new AtomicBoolean();
    static final Duration IDLE = Duration.ofMinutes(10);
    /** containerd's identifiers (namespaces, container ids): its identifiers package's pattern. */
    private static final Pattern IDENTIFIER = Pattern.compile("[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*");

    /** The pool of spares for the containerd at {@code address} (a short hash: socket paths stay under 108 bytes). */
    static Path pool(String address) {
        try {
            byte[] sum = MessageDigest.getInstance("SHA-256").digest(address.getBytes(StandardCharsets.UTF_8));
            return POOLS.resolve(HexFormat.of().formatHex(sum).substring(0, 32));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static void run(Map<String, String> flags) throws Exception {
        long started = System.nanoTime();
        String address = flags.getOrDefault("address", "");
        Path pool = pool(address);
        long pid = ProcessHandle.current().pid();
        Path idle = pool.resolve(pid + ".idle");
        Path claimed = pool.resolve(pid + ".claimed");
        // claimable at once, warmed meanwhile: a pod that comes during the warm-up still finds a started JVM (pods
        // come in bursts: a spare that warmed first was still warming for every other pod of a sequence)
        long[] warmed = {-1};
        try {
            rootOnly(pool);
            Libc.mkfifo(idle.toString(), 0600);
        } finally {
            // the launcher starts no second spare while this one starts (its marker), and may again now
            Files.deleteIfExists(pool.resolve("pending"));
        }
        long idleMs = ProcessHandle.current().info().startInstant()
                .map(at -> java.time.Duration.between(at, java.time.Instant.now()).toMillis()).orElse(-1L);
        // KILN_SHIM_SPARE_WARM=0 (containerd's environment) leaves the warm-up out: to measure what it brings
        // Then, idle and warm, it fills the pool up to its size (spares): one spare after the other
        boolean warmUp = !"0".equals(System.getenv("KILN_SHIM_SPARE_WARM"));
        warming = Thread.ofPlatform().daemon().name("spare-warm").start(() -> {
            long t = System.nanoTime();
            try {
                if (warmUp) {
                    warm(pool, pid);
                    warmed[0] = (System.nanoTime() - t) / 1_000_000;
                    step("done");
                    // in the pool's spares.log while idle (its output until claimed): what a spare's warm-up costs
                    if (!Spare.claimed) System.err.println(java.time.Instant.now() + " spare " + pid + ": idle "
                            + idleMs + " ms after its process started, warmed in " + warmed[0] + " ms (" + WARM_TIMES + ")");
                }
            } catch (Exception e) {
                System.err.println("containerd-shim-kiln-v2 spare: warm-up failed: " + e);
            }
            if (!Spare.claimed) topUp();
            if (warmUp && !vmWarmed) warmVmLater(pid);
        });
        AtomicBoolean assigned = new AtomicBoolean();
        Thread.ofPlatform().daemon().name("spare-watch").start(() -> watch(address, idle, claimed, assigned));
        Map<String, String> assignment = read(idle, claimed);
        long read = System.nanoTime();
        // started at nice 10 (its JVM start and warm-up yield to the pods being started), a pod's shim from now:
        // its group (the spare is its session's leader) back to nice 0, as a shim the launcher starts for a pod
        // (under the lock the warm-up's own setpriority call takes: it must not come after this one)
        boolean reniced;
        String cutAt;
        synchronized (Spare.class) {
            Spare.claimed = true;
            // where the claim found the warm-up (the steps after it are skipped, and would name themselves)
            cutAt = warmed[0] >= 0 ? null : warmStep + (WARM_TIMES.isEmpty() ? "" : ", after " + WARM_TIMES);
            reniced = Libc.niceGroup(0);
        }
        long t1 = System.nanoTime();
        assigned.set(true);
        Files.deleteIfExists(claimed);
        Map<String, String> serve = check(assignment, address);
        long t2 = System.nanoTime();
        Path bundle = Path.of(serve.get("bundle"));
        Libc.chdir(bundle.toString());
        long t3 = System.nanoTime();
        Path log = bundle.resolve("log");
        if (Files.exists(log, LinkOption.NOFOLLOW_LINKS) && Files.readAttributes(log,
                java.nio.file.attribute.BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).isOther()) {
            Libc.redirectOutput(log.toString());   // the fifo containerd copies into its own log
        }
        long t4 = System.nanoTime();
        ShimLog shimLog = new ShimLog(System.err, serve.get("id"), serve.containsKey("debug"));
        shimLog.line("a spare shim claimed (started " + (System.nanoTime() - started) / 1_000_000 + " ms ago, "
                + (cutAt != null ? "warm-up not done: " + cutAt : "warmed in " + warmed[0] + " ms") + ")");
        if (!reniced) shimLog.line("cannot take nice 0 back (setpriority refused): this pod's shim stays at nice 10");
        shimLog.debug("its start began " + began(assignment) + " ms before the assignment was read, which was "
                + (System.nanoTime() - read) / 1_000_000 + " ms ago (nice " + (t1 - read) / 1_000_000 + " ms, check "
                + (t2 - t1) / 1_000_000 + " ms, chdir " + (t3 - t2) / 1_000_000 + " ms, log fifo " + (t4 - t3) / 1_000_000
                + " ms)");
        // the next pod's spare: at once if no other warm spare waits in the pool (pods come in bursts: started
        // later, it was still starting when the next pod of a sequence came, which then took the cold path); else
        // once this pod's first container has started (taskStarted) or DEFER after the claim: its JVM start (~0.75 s
        // of CPU, an equal of this pod's shim for the scheduler whatever its nice: docs/containerd.md) then no longer
        // runs beside this pod's start, and the next pod claims the spare that waits
        boolean another;
        try {
            another = idle(pool) > 0;
        } catch (IOException e) {
            another = false;   // the pool unreadable: the next spare at once, as before
        }
        if (deferNext() && another) {
            shimLog.debug("the next spare starts once this pod has started: its first container, or a VM pod's guest"
                    + " (another one waits)");
            // its marker PID.defers: an idle spare that finishes its warm-up meanwhile leaves the pool to this one
            // (topUp), else that spare's own top-up would start a JVM beside this pod after all
            deferring = pool.resolve(pid + ".defers");
            try {
                Files.createFile(deferring);
                Path marker = deferring;
                Runtime.getRuntime().addShutdownHook(new Thread(() -> {   // a pod gone before its container started
                    try {
                        Files.deleteIfExists(marker);
                    } catch (IOException ignored) {
                        // a dead shim's marker is skipped and removed by the next topUp or the pool's removal
                    }
                }));
            } catch (IOException e) {
                deferring = null;
            }
            Thread.ofVirtual().start(() -> {
                sleep(DEFER.toMillis());
                if (!awaitingBoot) next();   // a VM pod's: once its guest started it (nextOnceBooted)
            });
        } else {
            Thread.ofVirtual().start(Spare::next);
        }
        ShimMain.serve(serve, bundle);
    }

    /** The longest a claimed spare defers the next spare's start ({@link #run}): a pod whose container never starts. */
    static final Duration DEFER = Duration.ofSeconds(3);
    /** The tasks this claimed spare has started (a CRI pod's sandbox, then its first container). */
    private static final AtomicInteger STARTS = new AtomicInteger();

    /**
     * Whether a claimed spare defers the next spare's start while another one waits ({@code KILN_SHIM_SPARE_NEXT} in
     * containerd's environment: {@code started}, the default, or {@code claim}, at once, the design before: to
     * measure one against the other).
     */
    private static boolean deferNext() {
        return !"claim".equals(System.getenv("KILN_SHIM_SPARE_NEXT"));
    }

    /**
     * A task of this shim has started (TaskService's Start of an init process): the second is a CRI pod's first
     * container, after which the pod's start is over and the next spare may start ({@link #next}).
     */
    static void taskStarted() {
        if (claimed && STARTS.incrementAndGet() == 2) Thread.ofVirtual().start(Spare::next);
    }

    /** The longest a claimed spare whose pod is a VM defers the next spare ({@link #nextOnceBooted}). */
    static final Duration VM_DEFER = Duration.ofSeconds(30);
    /** Set once this claimed spare's pod is a VM whose boot the next spare waits for ({@link #nextOnceBooted}). */
    private static volatile boolean awaitingBoot;

    /**
     * This claimed spare's pod is a VM (the start of VmTasks' Create, {@code timings} the relay's file, written when
     * the guest has started the task's process): if it defers the next spare, that spare starts once the file is
     * there (looked at every 50 ms), or {@link #VM_DEFER} from now (a Create that failed), rather than at the pod's
     * first container's Start or {@link #DEFER} after the claim. A kiln-vm pod's containers start before its guest has booted (StartContainer
     * returns in ~0.7 s, the TCG boot takes 2-10 s here), so until now the next spare's JVM start and warm-up (~1 s
     * of CPU with the vm step) began 3 s after the claim: in the last seconds of the guest's boot on a 3 s pod, in
     * its middle on a slower one (of 4 kiln-vm pods at load 7, the two slower ones, 4.6 and 3.1 s).
     */
    static void nextOnceBooted(Path timings) {
        if (!claimed || deferring == null || NEXT_STARTED.get()) return;   // not deferring, or started already
        awaitingBoot = true;
        Thread.ofVirtual().start(() -> {
            long deadline = System.nanoTime() + VM_DEFER.toNanos();
            while (!Files.exists(timings) && System.nanoTime() < deadline && !NEXT_STARTED.get()) sleep(50);
            next();
        });
    }

    /** This claimed spare's marker while it defers the next spare ({@link #run}), or null. */
    private static volatile Path deferring;

    /** Starts the next spare of this claimed spare's pool, once, if the pool is short of spares ({@link #topUp}). */
    static void next() {
        if (!claimed || !NEXT_STARTED.compareAndSet(false, true)) return;
        Path marker = deferring;
        if (marker != null) {
            try {
                Files.deleteIfExists(marker);
            } catch (IOException ignored) {
                // topUp below starts the spare all the same
            }
        }
        topUp();
    }

    /** Whether a claimed spare of {@code pool} defers the next spare ({@code PID.defers}, its process alive). */
    private static boolean deferred(Path pool) throws IOException {
        try (DirectoryStream<Path> markers = Files.newDirectoryStream(pool, "[0-9]*.defers")) {
            for (Path f : markers) {
                String pid = f.getFileName().toString().replace(".defers", "");
                if (!pid.chars().allMatch(Character::isDigit) || pid.length() > 10) continue;
                if (ProcessHandle.of(Long.parseLong(pid)).map(ProcessHandle::isAlive).orElse(false)) return true;
                Files.deleteIfExists(f);   // its shim is gone
            }
        }
        return false;
    }

    /**
     * How many spares a pool keeps ({@code KILN_SHIM_SPARES} in containerd's environment, default 2): with one, pods
     * back to back claimed a spare started ~1 s earlier, often still warming (its claim 100-250 ms instead of
     * 15-40), while the next one's JVM start ran beside the pod; with two, the spare a pod claims was started a pod
     * earlier. Each idle spare costs ≈ 65 MB PSS.
     */
    static int spares() {
        if ("0".equals(System.getenv("KILN_SHIM_SPARE"))) return 0;
        try {
            return Math.max(0, Math.min(8, Integer.parseInt(System.getenv().getOrDefault("KILN_SHIM_SPARES", "2"))));
        } catch (NumberFormatException e) {
            return 2;
        }
    }

    /**
     * Starts one spare in this spare's pool if it has fewer than {@link #spares} idle and none starting (the
     * launcher's {@code pending} marker: one at a time), with this process's own command line, as the launcher's
     * {@code start_spare} starts one (setsid, nice 10, directory /, stdin /dev/null, output in the pool's
     * spares.log). Called by a claimed spare ({@link #next}) and by a spare that has become idle and warm: the pool
     * fills up one spare after the other. Doing it here rather than in the launcher keeps the pod's {@code start}
     * short: containerd waits for it.
     */
    static void topUp() {
        ProcessHandle.Info self = ProcessHandle.current().info();
        String[] args = self.arguments().orElse(new String[0]);
        if (self.command().isEmpty() || args.length < 3 || !args[args.length - 1].equals("spare")) return;
        String address = args[args.length - 2];
        Path pool = pool(address);
        try {
            if (!Files.exists(Path.of(address.startsWith("unix://") ? address.substring(7) : address))) {
                return;   // its containerd is gone
            }
            if (idle(pool) >= spares()) return;
            if (!claimed && deferred(pool)) return;   // a claimed spare starts it once its pod has started
            Path pending = pool.resolve("pending");
            if (Files.isDirectory(pending) && Files.getLastModifiedTime(pending).toInstant()
                    .isBefore(java.time.Instant.now().minusSeconds(60))) {
                Files.deleteIfExists(pending);   // its spare died while starting
            }
            Files.createDirectory(pending);
            List<String> cmd = new ArrayList<>(List.of("setsid", "nice", "-n", "10", self.command().get()));
            cmd.addAll(List.of(args));
            ProcessBuilder.Redirect log = ProcessBuilder.Redirect.appendTo(pool.resolve("spares.log").toFile());
            Children.start(new ProcessBuilder(cmd).directory(Path.of("/").toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(log).redirectError(log));
        } catch (java.nio.file.FileAlreadyExistsException startingAlready) {
            // another one is starting
        } catch (IOException | RuntimeException e) {
            System.err.println("containerd-shim-kiln-v2: cannot start the next spare shim: " + e);
        }
    }

    /** How many idle spares wait in {@code pool} (their fifo {@code PID.idle}, their process alive). */
    private static int idle(Path pool) throws IOException {
        int idle = 0;
        try (DirectoryStream<Path> fifos = Files.newDirectoryStream(pool, "[0-9]*.idle")) {
            for (Path f : fifos) {
                String pid = f.getFileName().toString().replace(".idle", "");
                if (!pid.chars().allMatch(Character::isDigit) || pid.length() > 10) continue;
                if (ProcessHandle.of(Long.parseLong(pid)).map(ProcessHandle::isAlive).orElse(false)) idle++;
            }
        }
        return idle;
    }

    /** How long ago (ms) the launcher's {@code start} began, from its {@code began} (bash's $EPOCHREALTIME), or -1. */
    private static long began(Map<String, String> assignment) {
        try {
            double at = Double.parseDouble(assignment.getOrDefault("began", ""));
            return (long) (System.currentTimeMillis() - at * 1000);
        } catch (NumberFormatException none) {
            return -1;
        }
    }

    /** The pool must be root's and closed to everyone else: whoever can write the fifo directs a root process. */
    private static void rootOnly(Path pool) throws IOException {
        var attrs = Files.readAttributes(pool, java.nio.file.attribute.PosixFileAttributes.class,
                LinkOption.NOFOLLOW_LINKS);
        if (!attrs.isDirectory() || !attrs.owner().getName().equals("root")
                || !attrs.permissions().equals(Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE,
                PosixFilePermission.OWNER_EXECUTE))) {
            throw new IOException("the spare pool " + pool + " is not a root-only (0700) directory");
        }
    }

    /** The assignment, read from the fifo under whichever name it has when this open comes (the claim renames it). */
    private static Map<String, String> read(Path idle, Path claimed) throws IOException {
        byte[] data;
        try (InputStream in = Files.newInputStream(idle)) {
            data = in.readAllBytes();
        } catch (NoSuchFileException renamedFirst) {
            try (InputStream in = Files.newInputStream(claimed)) {
                data = in.readAllBytes();
            }
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (String pair : new String(data, StandardCharsets.UTF_8).split("\0")) {
            int eq = pair.indexOf('=');
            if (eq > 0) out.put(pair.substring(0, eq), pair.substring(eq + 1));
        }
        return out;
    }

    /**
     * The flags {@code serve} runs with, from an assignment checked as {@code start} would have derived it: only
     * this spare's containerd, a bundle that is containerd's own task directory for that namespace and id (absolute,
     * no {@code ..}, no symbolic link, holding config.json), and the socket {@code start} computes for them. So an
     * assignment cannot make the shim write (its socket, log, files in the bundle) anywhere else.
     */
    static Map<String, String> check(Map<String, String> a, String address) throws Exception {
        String ns = a.getOrDefault("namespace", "");
        String id = a.getOrDefault("id", "");
        if (!a.getOrDefault("address", "").equals(address)) {
            throw new IOException("assignment for another containerd (" + a.get("address") + ")");
        }
        for (String name : new String[] {ns, id}) {
            if (name.length() > 76 || !IDENTIFIER.matcher(name).matches()) {
                throw new IOException("assignment names an invalid identifier \"" + name + "\"");
            }
        }
        Path bundle = Path.of(a.getOrDefault("bundle", ""));
        if (!bundle.isAbsolute() || !bundle.normalize().equals(bundle) || bundle.getNameCount() < 3
                || !bundle.getFileName().toString().equals(id) || !bundle.getParent().getFileName().toString().equals(ns)
                || !bundle.getParent().getParent().getFileName().toString().startsWith("io.containerd.runtime.v2")
                || !bundle.toRealPath().equals(bundle) || !Files.isRegularFile(bundle.resolve("config.json"))) {
            throw new IOException("assignment's bundle " + bundle + " is not containerd's task directory for " + ns
                    + "/" + id);
        }
        Map<String, String> flags = new LinkedHashMap<>();
        flags.put("namespace", ns);
        flags.put("id", id);
        flags.put("address", address);
        flags.put("publish-binary", a.getOrDefault("publish-binary", "containerd"));
        Path socket = ShimMain.socketPath(flags, bundle);
        if (!a.getOrDefault("socket", "").equals(socket.toString())) {
            throw new IOException("assignment's socket " + a.get("socket") + " is not " + socket);
        }
        flags.put("socket", socket.toString());
        flags.put("bundle", bundle.toString());
        String ttrpc = a.getOrDefault("ttrpc-address", "");
        if (!ttrpc.isEmpty()) flags.put("ttrpc-address", ttrpc);
        if (a.getOrDefault("debug", "").equals("true")) flags.put("debug", "true");
        return flags;
    }

    /**
     * An idle spare leaves when its containerd's socket is gone (containerd stopped; checked every second) or after
     * {@link #IDLE}; it first renames its fifo away, which fails if a launcher claimed it in the meantime. A claimed
     * spare whose assignment never comes (the launcher died between claim and write) leaves after 10 s.
     */
    private static void watch(String address, Path idle, Path claimed, AtomicBoolean assigned) {
        Path socket = Path.of(address.startsWith("unix://") ? address.substring(7) : address);
        long deadline = System.nanoTime() + IDLE.toNanos();
        while (true) {
            sleep(1000);
            if (Files.exists(socket) && System.nanoTime() < deadline) continue;
            try {
                Files.move(idle, idle.resolveSibling(idle.getFileName() + ".exit"), StandardCopyOption.ATOMIC_MOVE);
                Files.deleteIfExists(idle.resolveSibling(idle.getFileName() + ".exit"));
                // the warm-up stopped first, as a claim stops it (after its current step, topping nothing up):
                // still running (a spare retiring while it warms, on a loaded node), it re-made its files in the
                // pool after their removal below, and the pool of a containerd that is gone stayed
                Spare.claimed = true;
                Thread warmUp = warming;
                if (warmUp != null) warmUp.join(Duration.ofSeconds(5));
                String pid = idle.getFileName().toString().replace(".idle", "");
                for (String warm : new String[] {".warm-events", ".warm-task", ".warm-config.json",
                        ".warm-runtime.toml"}) {
                    Files.deleteIfExists(idle.resolveSibling(pid + warm));   // a warm-up cut short
                }
                Trees.delete(idle.resolveSibling(pid + ".warm-state"));
                if (!Files.exists(socket)) removeDeadPool(idle.getParent());
                System.exit(0);
            } catch (IOException claimedMeanwhile) {
                break;
            } catch (InterruptedException e) {
                System.exit(0);
            }
        }
        for (int i = 0; i < 10 && !assigned.get(); i++) sleep(1000);
        if (!assigned.get()) {
            try {
                Files.deleteIfExists(claimed);
            } catch (IOException ignored) {
                // exiting anyway
            }
            System.exit(1);
        }
    }

    /**
     * Removes the pool of a containerd that is gone, once no other spare is in it (a spare started just as its
     * containerd stopped — the launcher's and {@link #next}'s starts run in the background — re-made the pool after
     * whoever cleaned up). A containerd started again on that address makes it again.
     */
    private static void removeDeadPool(Path pool) {
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(pool)) {
            for (Path e : entries) {
                String name = e.getFileName().toString();
                if (name.endsWith(".idle") || name.endsWith(".claimed")) return;
                if (name.endsWith(".defers")) {
                    if (ProcessHandle.of(Long.parseLong(name.replace(".defers", ""))).map(ProcessHandle::isAlive)
                            .orElse(false)) return;
                    Files.deleteIfExists(e);   // a claimed shim killed while it deferred the next spare
                }
            }
        } catch (NumberFormatException notOurs) {
            return;
        } catch (IOException gone) {
            return;
        }
        try {
            for (String name : new String[] {"tick", "spares.log", "pending"}) Files.deleteIfExists(pool.resolve(name));
            Files.deleteIfExists(pool);
        } catch (IOException notEmpty) {
            // another spare is starting there
        }
    }

    /**
     * Runs the code a pod's first Create runs, on built-in sample data and with no side effect (no runtime, no
     * mount, no file outside the pool): TTRPC framing both ways with the SO_PEERCRED check, the Request and
     * CreateTaskRequest decoding, the OCI spec's parsing and the isolation's choice, the runtime's command line, a
     * TaskCreate event forwarded over TTRPC, a process started as the runtime's commands are (TaskService.run). A fresh JVM runs all of that interpreted and
     * initialises its classes on first use; here that happens while the spare waits.
     */
    static void warm(Path pool, long pid) throws Exception {
        step("libc's downcalls");
        Libc.link();   // the system calls a claim and a pod's requests make (made lazily: the idle fifo came first)
        step("the first Create");
        ShimLog quiet = new ShimLog(new PrintStream(OutputStream.nullOutputStream()), "spare");
        Path eventsSocket = pool.resolve(pid + ".warm-events");
        Path taskSocket = pool.resolve(pid + ".warm-task");
        Path spec = pool.resolve(pid + ".warm-config.json");
        Files.writeString(spec, SAMPLE_SPEC);
        // a CRI handler's runtime config (its ConfigPath), read as a pod's first Create reads it
        Path runtimeConfig = pool.resolve(pid + ".warm-runtime.toml");
        Files.writeString(runtimeConfig, "isolation = \"container\"\n");
        ObjectMapper json = new ObjectMapper();
        ServerSocketChannel events = new TtrpcServer("containerd.services.events.ttrpc.v1.Events", (method, p) -> {
            ForwardRequest.parseFrom(p);
            return Empty.getDefaultInstance().toByteArray();
        }, quiet).serve(eventsSocket);
        EventPublisher publisher = new EventPublisher("kiln-warm", "unix://" + eventsSocket, "containerd", "", quiet);
        ServerSocketChannel tasks = new TtrpcServer(TaskService.NAME, (method, p) -> {
            if (!method.equals("Create")) return after(method, p, publisher);
            CreateTaskRequest r = CreateTaskRequest.parseFrom(p);
            JsonNode s = json.readTree(spec.toFile());
            String configPath = Options.parseFrom(r.getOptions().getValue()).getConfigPath();
            KilnRuntime runtime = KilnRuntime.choose(s, configPath.isEmpty() ? null : configPath,
                    pool.resolve("warm-bundle"));
            PodSizing.apply(runtime, s, pool.resolve("warm-bundle"));   // a no-op for a container task
            for (Mount m : r.getRootfsList()) RootfsMount.of(m.getType(), m.getOptionsList());
            runtime.command("create", "--bundle", r.getBundle(), "--pid-file", "init.pid", r.getId());
            GvisorPod.member(runtime, s);
            StdioUri.parse(r.getStdout());
            StdioUri.parse("binary:///usr/bin/logger?tag=warm");
            publisher.publish("/tasks/create", TaskCreate.newBuilder().setContainerId(r.getId())
                    .setBundle(r.getBundle()).addAllRootfs(r.getRootfsList()).setIo(TaskIO.newBuilder()
                            .setStdout(r.getStdout()).setStderr(r.getStderr())).setPid(1).build());
            return CreateTaskResponse.newBuilder().setPid(1).build().toByteArray();
        }, quiet).serve(taskSocket);
        try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            channel.connect(UnixDomainSocketAddress.of(taskSocket));
            TtrpcConnection conn = new TtrpcConnection(channel);
            byte[] create = Request.newBuilder().setService(TaskService.NAME).setMethod("Create")
                    .setPayload(sampleCreate(runtimeConfig).toByteString()).build().toByteArray();
            for (int i = 0; i < 20 && !claimed; i++) {
                conn.write(2 * i + 1, TtrpcConnection.REQUEST, create);
                Response response = Response.parseFrom(conn.read().data());
                if (response.getStatus().getCode() != 0) {
                    throw new IOException("warm-up Create failed: " + response.getStatus().getMessage());
                }
                if (i == 0) step("more Creates");
            }
            step("the requests after Create");
            // the requests a pod's tasks get after their Create, in a pod's order (their messages, the events of a
            // start and an exit): each was a class loaded and initialised from the jar after the claim
            int stream = 41;
            for (var request : afterCreate().entrySet()) {
                if (claimed) break;
                conn.write(stream += 2, TtrpcConnection.REQUEST, Request.newBuilder().setService(TaskService.NAME)
                        .setMethod(request.getKey()).setPayload(request.getValue()).build().toByteArray());
                Response.parseFrom(conn.read().data());
            }
        }
        // a claim's own steps (run) before the pod's socket listens, which took 10-140 ms each at load 12 in a
        // claimed spare: the assignment's check (a bundle as containerd makes it, in the pool), chdir(2) to where
        // the spare already is, setpriority(2) to the nice it already has, open(2) of a log fifo that is not there
        step("the claim's steps");
        if (!claimed) warmClaim(pool, pid);
        // a process started as the runtime's commands are (TaskService.run: its output through temporary files,
        // whose first use seeds the JDK's SecureRandom): a cold first `runc start` took 60-190 ms, the next ~40 ms
        step("a process");
        if (!claimed) TaskService.run(List.of("true"), "the warm-up's process");
        // the rootfs's mount(2) once, refused: its target does not exist (ENOENT), so nothing is mounted. The first
        // call of a downcall builds its method handle's code: a claimed spare's first Create spent 15-90 ms in its
        // mount step at load 10-15 where the second Create of the pod spent 1-5 ms
        step("mount(2)");
        if (!claimed) {
            RootfsMount.of("overlay", List.of("index=off", "lowerdir=" + pool.resolve(pid + ".warm-none")))
                    .mount("overlay", pool.resolve(pid + ".warm-none"));
        }
        // the task's OOM watch as a Create starts it (its init's /proc/PID/cgroup, the memory cgroup's counter),
        // on this process: cold, it was 20-40 ms between a claimed spare's `runc create` and its TaskCreate
        step("the OOM watch");
        if (!claimed) {
            Path counter = OomWatch.counter((int) pid);
            if (counter != null) OomWatch.kills(counter);
        }
        // last: a kiln-vm pod's cold computations (QEMU's seccomp filter, the kernel's modules; 0.2-1 s; only on a
        // node that booted a pod VM), after every step of a container pod's path, and cut short by a claim between
        // its own steps. Before, a spare claimed ~0.8 s after its start (pods back to back) had not reached
        // mount(2), and its vm step ran on beside the pod's Create (it could not be stopped)
        step("the vm isolation's");
        vmWarmed = VmTasks.warm(() -> claimed);
        publisher.close();
        tasks.close();
        events.close();
        Files.deleteIfExists(taskSocket);
        Files.deleteIfExists(eventsSocket);
        Files.deleteIfExists(spec);
        Files.deleteIfExists(runtimeConfig);
        quiet.line("warm");
        step("its collection");
        // the warm-up's garbage collected now, while idle: an idle spare's memory is what a node pays for it (not
        // once claimed: a full collection would pause the pod's requests)
        if (!claimed) System.gc();
    }

    /** Whether the warm-up's vm step ran on the caches of a node that has made a pod VM (VmTasks.warm). */
    private static volatile boolean vmWarmed;

    /**
     * The vm step again, once the node's first pod VM has been made (VmTasks.cachesMade, looked at once a second
     * while idle: a stat): a spare warmed before it skipped that step, or ran it before the caches existed, and the
     * next kiln-vm pod that claimed it found the vm path cold (the quiet suite's slowest kiln-vm pod, whose spare was
     * started during the kiln pods before it). A node that never runs a VM pays the stat only.
     */
    private static void warmVmLater(long pid) {
        while (!claimed && !Thread.currentThread().isInterrupted()) {
            sleep(1000);
            if (claimed || !VmTasks.cachesMade()) continue;
            long t = System.nanoTime();
            VmTasks.warm(() -> claimed);
            if (claimed) return;
            System.gc();   // its garbage, as the warm-up's
            System.err.println(java.time.Instant.now() + " spare " + pid + ": warmed the vm path in "
                    + (System.nanoTime() - t) / 1_000_000 + " ms, once the node's first pod VM was made");
            return;
        }
    }

    /** The warm-up enters {@code name}: the step before it is timed. */
    private static void step(String name) {
        long now = System.nanoTime();
        if (warmStepAt != 0) {
            WARM_TIMES.append(WARM_TIMES.isEmpty() ? "" : ", ").append(warmStep).append(' ')
                    .append((now - warmStepAt) / 1_000_000).append(" ms");
        }
        warmStepAt = now;
        warmStep = name;
    }

    /** The warm-up's answer to a request other than Create: the message TaskService answers it with. */
    private static byte[] after(String method, byte[] p, EventPublisher publisher) throws IOException {
        com.google.protobuf.Message out = switch (method) {
            case "Connect" -> ConnectResponse.newBuilder().setShimPid(1).setTaskPid(ConnectRequest.parseFrom(p)
                    .getId().length()).setVersion("kiln").build();
            case "Start" -> {
                StartRequest r = StartRequest.parseFrom(p);
                publisher.publish("/tasks/start", TaskStart.newBuilder().setContainerId(r.getId()).setPid(1).build());
                yield StartResponse.newBuilder().setPid(1).build();
            }
            case "State" -> StateResponse.newBuilder().setId(StateRequest.parseFrom(p).getId()).setBundle("/")
                    .setPid(1).setStatus(Status.RUNNING).setStdout("").setTerminal(false).setExecId("")
                    .setExitStatus(0).setExitedAt(TaskService.time(java.time.Instant.now())).build();
            case "Kill" -> {
                KillRequest.parseFrom(p);
                publisher.publish("/tasks/exit", TaskExit.newBuilder().setContainerId("warm").setId("warm").setPid(1)
                        .setExitStatus(137).setExitedAt(TaskService.time(java.time.Instant.now())).build());
                yield Empty.getDefaultInstance();
            }
            case "Wait" -> WaitResponse.newBuilder().setExitStatus(WaitRequest.parseFrom(p).getExecId().length())
                    .setExitedAt(TaskService.time(java.time.Instant.now())).build();
            case "Delete" -> {
                DeleteRequest r = DeleteRequest.parseFrom(p);
                publisher.publish("/tasks/delete", TaskDelete.newBuilder().setContainerId(r.getId()).setPid(1)
                        .setExitStatus(137).setId(r.getId()).build());
                yield DeleteResponse.newBuilder().setPid(1).setExitStatus(137).build();
            }
            case "Shutdown" -> {
                ShutdownRequest.parseFrom(p);
                yield Empty.getDefaultInstance();
            }
            default -> throw TtrpcServer.RpcError.unimplemented("method " + method + " is not warmed");
        };
        return out.toByteArray();
    }

    /** The requests of a pod's task after its Create, in a pod's order, with the warm-up's sample task. */
    private static Map<String, com.google.protobuf.ByteString> afterCreate() {
        Map<String, com.google.protobuf.ByteString> out = new LinkedHashMap<>();
        out.put("Connect", ConnectRequest.newBuilder().setId("warm").build().toByteString());
        out.put("Start", StartRequest.newBuilder().setId("warm").build().toByteString());
        out.put("State", StateRequest.newBuilder().setId("warm").build().toByteString());
        out.put("Wait", WaitRequest.newBuilder().setId("warm").build().toByteString());
        out.put("Kill", KillRequest.newBuilder().setId("warm").setSignal(9).setAll(true).build().toByteString());
        out.put("Delete", DeleteRequest.newBuilder().setId("warm").build().toByteString());
        out.put("Shutdown", ShutdownRequest.newBuilder().setId("warm").build().toByteString());
        return out;
    }

    /**
     * A claim's steps without their effect: {@link #check} of an assignment for a bundle made in the pool as
     * containerd makes one, chdir(2) to "/" (where a spare runs), setpriority(2) to nice 10 (a spare's: under the
     * lock {@link #run} takes, never after a claim), open(2) of a log fifo that does not exist.
     */
    private static void warmClaim(Path pool, long pid) throws Exception {
        Path state = pool.resolve(pid + ".warm-state");
        Path bundle = state.resolve("io.containerd.runtime.v2.task/warm/warm");
        try {
            Files.createDirectories(bundle);
            Files.writeString(bundle.resolve("config.json"), SAMPLE_SPEC);
            String address = "unix://" + pool.resolve(pid + ".warm-containerd");
            Map<String, String> flags = new LinkedHashMap<>(Map.of("namespace", "warm", "id", "warm", "address", address));
            Map<String, String> assignment = new LinkedHashMap<>(flags);
            assignment.put("bundle", bundle.toRealPath().toString());
            assignment.put("socket", ShimMain.socketPath(flags, bundle).toString());
            assignment.put("ttrpc-address", address);
            assignment.put("debug", "true");
            check(assignment, address);
            Libc.chdir("/");
            synchronized (Spare.class) {
                if (!claimed) Libc.niceGroup(10);
            }
            Libc.redirectOutput(bundle.resolve("log").toString());   // none: open(2) fails, nothing redirected
        } finally {
            Trees.delete(state);
        }
    }

    private static CreateTaskRequest sampleCreate(Path runtimeConfig) {
        return CreateTaskRequest.newBuilder().setId("warm").setBundle("/run/containerd/io.containerd.runtime.v2.task/"
                        + "k8s.io/warm").addRootfs(Mount.newBuilder().setType("overlay").setSource("overlay")
                        .addOptions("index=off").addOptions("lowerdir=/var/lib/containerd/snapshots/1/fs"))
                .setStdout("/run/containerd/io.containerd.grpc.v1.cri/containers/warm/io/1/warm-stdout")
                .setStderr("/run/containerd/io.containerd.grpc.v1.cri/containers/warm/io/1/warm-stderr")
                .setOptions(Any.newBuilder().setTypeUrl("containerd.runc.v1.Options")
                        .setValue(Options.newBuilder().setConfigPath(runtimeConfig.toString()).build().toByteString()))
                .build();
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A CRI container's spec as containerd 1.6 writes it, cut short (what the warm-up parses). */
    private static final String SAMPLE_SPEC = """
            {"ociVersion":"1.0.2-dev","process":{"user":{"uid":0,"gid":0,"additionalGids":[10]},"args":["sleep","3600"],
            "env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HOSTNAME=warm"],"cwd":"/",
            "capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_CHOWN","CAP_KILL"],
            "permitted":["CAP_CHOWN","CAP_KILL"]},"oomScoreAdj":1000},"root":{"path":"rootfs"},
            "mounts":[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid","noexec","nodev"]},
            {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},
            {"destination":"/etc/hosts","type":"bind","source":"/var/lib/containerd/sandboxes/warm/hosts","options":["rbind","rprivate","rw"]}],
            "annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.sandbox-id":"warm",
            "io.kubernetes.cri.container-name":"warm","io.kubernetes.cri.image-name":"busybox"},
            "linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}],"memory":{"limit":0},"cpu":{"shares":2}},
            "cgroupsPath":"/k8s.io/warm","namespaces":[{"type":"pid"},{"type":"ipc","path":"/proc/1/ns/ipc"},
            {"type":"network","path":"/var/run/netns/cni-warm"},{"type":"mount"}],"maskedPaths":["/proc/kcore"],
            "readonlyPaths":["/proc/sys"]}}
            """;
}
