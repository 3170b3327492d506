package dev.kiln.containerd;

import dev.kiln.testing.BusyboxRootfs;
import dev.kiln.testing.Command;
import dev.kiln.testing.Umoci;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A real containerd (Debian's 1.6) for one test class: its own root, state, config and sockets under {@code dir},
 * kiln's shim first on its PATH (as scripts/setup installs it), the CRI plugin only when asked. {@link #close} kills
 * every task left, stops containerd, unmounts what it left mounted and kills any shim of this instance, so nothing
 * stays on the host.
 */
final class TestContainerd implements AutoCloseable {

    record Result(int code, String out, String err) {}

    static final Path SHIM = Path.of("bin/containerd-shim-kiln-v2").toAbsolutePath();
    static final String IMAGE = "docker.io/library/busybox:kiln";
    static final String IMAGE2 = "docker.io/library/busybox:kiln-second";
    /** The pod sandbox's image for CRI (a pause container that sleeps): busybox with {@code sleep} as its command. */
    static final String PAUSE = "docker.io/library/busybox:kiln-pause";

    final Path dir;
    final Path socket;
    private final String extraConfig;
    private final boolean cri;
    private Process containerd;

    private TestContainerd(Path dir, boolean cri, String extraConfig) {
        this.dir = dir;
        this.socket = dir.resolve("c.sock");
        this.cri = cri;
        this.extraConfig = extraConfig;
    }

    static TestContainerd start(Path dir, boolean cri, String extraConfig) throws IOException {
        Command.require("containerd", "containerd");
        Command.require("umoci", "umoci");
        Command.require("skopeo", "skopeo");
        TestContainerd c = new TestContainerd(dir, cri, extraConfig);
        Files.createDirectories(dir.resolve("bin"));
        Files.createSymbolicLink(dir.resolve("bin/containerd-shim-kiln-v2"), SHIM);
        Files.writeString(dir.resolve("config.toml"), """
                version = 2
                root = "%s/root"
                state = "%s/state"
                %s
                [grpc]
                  address = "%s"
                [ttrpc]
                  address = "%s.ttrpc"
                %s
                """.formatted(dir, dir, cri ? "" : "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]", c.socket,
                c.socket, extraConfig));
        c.launch();
        c.importBusybox();
        return c;
    }

    private void launch() throws IOException {
        ProcessBuilder pb = new ProcessBuilder("containerd", "--config", dir.resolve("config.toml").toString())
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("containerd.log").toFile()))
                .redirectErrorStream(true);
        pb.environment().put("PATH", dir.resolve("bin") + ":" + System.getenv("PATH"));
        pb.environment().put(VmTasks.ROOT_ENV, dir.resolve("kiln").toString()); // the vm isolation's caches, uid claims
        containerd = pb.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (ctr(Duration.ofSeconds(5), "version").code() != 0) {
            if (System.nanoTime() > deadline || !containerd.isAlive()) {
                throw new IllegalStateException("containerd did not start; its log:\n" + log());
            }
            sleep(100);
        }
    }

    /** Stops containerd (not its tasks or shims) and starts it again on the same root and state. */
    void restart() throws IOException, InterruptedException {
        containerd.destroy();
        if (!containerd.waitFor(15, TimeUnit.SECONDS)) containerd.destroyForcibly().waitFor();
        launch();
    }

    /** Stops containerd (not its tasks or shims), as a node's operator would; {@link #close} still cleans up. */
    void stopDaemon() throws InterruptedException {
        containerd.destroy();
        if (!containerd.waitFor(15, TimeUnit.SECONDS)) containerd.destroyForcibly().waitFor();
    }

    /** A busybox image (the host's static busybox) imported from an OCI archive, under two tags. */
    private void importBusybox() throws IOException {
        Path work = dir.resolve("image");
        Path layout = work.resolve("layout");
        Umoci.initWithEmptyImage(layout, "1");
        Path bundle = work.resolve("bundle");
        Umoci.unpack(layout, "1", bundle);
        BusyboxRootfs.create(bundle.resolve("rootfs"));
        for (String applet : List.of("dmesg", "wget", "kill", "cut")) {
            Files.createSymbolicLink(bundle.resolve("rootfs/bin").resolve(applet), Path.of("busybox"));
        }
        Umoci.repack(layout, "1", bundle);
        Umoci.config(layout, "1", "--config.cmd", "sh", "--config.env", "PATH=/bin");
        Umoci.tag(layout, "1", "pause");
        Umoci.config(layout, "pause", "--config.cmd", "sleep", "--config.cmd", "2147483647");
        for (String ref : List.of(IMAGE, IMAGE2, PAUSE)) {
            Path archive = work.resolve(ref.replaceAll("[^a-z0-9]", "_") + ".tar");
            Command.run("skopeo", "copy", "oci:" + layout + ":" + (ref.equals(PAUSE) ? "pause" : "1"),
                    "oci-archive:" + archive + ":" + ref);
            for (String ns : cri ? List.of("default", "k8s.io") : List.of("default")) {
                Result r = ctr(Duration.ofSeconds(60), "-n", ns, "image", "import", archive.toString());
                if (r.code() != 0) throw new IllegalStateException("ctr image import: " + r.err());
            }
        }
        deleteTree(work);
    }

    Result ctr(Duration timeout, String... args) {
        List<String> argv = new ArrayList<>(List.of("ctr", "--address", socket.toString()));
        argv.addAll(List.of(args));
        return run(timeout, argv, false);
    }

    /** ctr with a terminal of its own (script(1)), as a user typing {@code ctr task exec -t}. */
    Result ctrWithTty(Duration timeout, String... args) {
        StringBuilder cmd = new StringBuilder("ctr --address " + socket);
        for (String a : args) cmd.append(" '").append(a.replace("'", "'\\''")).append("'");
        return run(timeout, List.of("script", "-qec", cmd.toString(), "/dev/null"), true);
    }

    private static Result run(Duration timeout, List<String> argv, boolean mergeErr) {
        try {
            Path out = Files.createTempFile("ctr-", ".out");
            Path err = Files.createTempFile("ctr-", ".err");
            try {
                Process p = new ProcessBuilder(argv)
                        .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                        .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
                if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                    Command.destroyTree(p.toHandle());
                    return new Result(-1, Files.readString(out), "timed out after " + timeout.toSeconds() + " s: "
                            + Files.readString(err));
                }
                return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                        Files.readString(err, StandardCharsets.UTF_8));
            } finally {
                Files.deleteIfExists(out);
                Files.deleteIfExists(err);
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot run " + argv, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    String log() {
        try {
            return Files.readString(dir.resolve("containerd.log"));
        } catch (IOException e) {
            return "(no log)";
        }
    }

    /**
     * Shim processes serving this containerd's tasks still running: shims the launcher started for a pod, and spares
     * a pod claimed (a spare runs in {@code /} until claimed, then in its pod's bundle).
     */
    List<ProcessHandle> shims() {
        return ours().filter(p -> !idleSpare(p)).toList();
    }

    /** Spare shims of this containerd waiting (or starting) to be claimed. */
    List<ProcessHandle> spares() {
        return ours().filter(TestContainerd::idleSpare).toList();
    }

    /** Every shim process of this containerd, spares too (their command line names its address). */
    private java.util.stream.Stream<ProcessHandle> ours() {
        return ProcessHandle.allProcesses().filter(p -> p.info().arguments().map(a -> List.of(a).contains(
                socket.toString()) && (List.of(a).contains("serve") || List.of(a).contains("spare"))).orElse(false));
    }

    private static boolean idleSpare(ProcessHandle p) {
        if (!p.info().arguments().map(a -> List.of(a).contains("spare")).orElse(false)) return false;
        try {
            return Files.readSymbolicLink(Path.of("/proc/" + p.pid() + "/cwd")).toString().equals("/");
        } catch (IOException gone) {
            return false;
        }
    }

    /** Mounts under this containerd's directories. */
    List<String> mounts() throws IOException {
        return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                .map(l -> l.split(" ")[4]).filter(m -> m.startsWith(dir.toString())).toList();
    }

    @Override
    public void close() throws Exception {
        // the shims' sockets (/run/containerd/s/sha256(address/ns/id)): a shim killed below cannot remove its own
        List<Path> sockets = new ArrayList<>();
        for (String ns : List.of("default", "k8s.io")) {
            for (String id : ctr(Duration.ofSeconds(10), "-n", ns, "c", "ls", "-q").out().lines().toList()) {
                sockets.add(ShimMain.socketPath(java.util.Map.of("address", socket.toString(), "namespace", ns,
                        "id", id.strip())));
            }
        }
        for (ProcessHandle shim : ours().toList()) {
            List<String> args = List.of(shim.info().arguments().orElse(new String[0]));
            int i = args.indexOf("-socket");
            if (i >= 0 && i + 1 < args.size()) sockets.add(Path.of(args.get(i + 1)));
        }
        for (String ns : List.of("default", "k8s.io")) {
            for (String line : ctr(Duration.ofSeconds(10), "-n", ns, "task", "ls", "-q").out().lines().toList()) {
                ctr(Duration.ofSeconds(10), "-n", ns, "task", "kill", "-a", "-s", "SIGKILL", line.strip());
                sleep(300);
                ctr(Duration.ofSeconds(20), "-n", ns, "task", "rm", "-f", line.strip());
            }
            for (String line : ctr(Duration.ofSeconds(10), "-n", ns, "c", "ls", "-q").out().lines().toList()) {
                ctr(Duration.ofSeconds(20), "-n", ns, "c", "rm", line.strip());
            }
        }
        if (containerd != null) {
            containerd.destroy();
            if (!containerd.waitFor(15, TimeUnit.SECONDS)) containerd.destroyForcibly().waitFor();
        }
        // spares exit by themselves once containerd's socket is gone (SpareShimTest checks it); these are killed
        for (ProcessHandle shim : ours().toList()) Command.destroyTree(shim);
        for (Path s : sockets) Files.deleteIfExists(s);
        deleteTree(Spare.pool(socket.toString()));
        List<String> left = new ArrayList<>(mounts());
        left.sort(Comparator.reverseOrder());
        for (String m : left) Command.run("umount", "-l", m);
        deleteTree(dir);
    }

    static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) return;
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
