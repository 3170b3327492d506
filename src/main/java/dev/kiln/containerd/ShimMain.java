package dev.kiln.containerd;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.containerd.wire.task.DeleteResponse;
import java.io.IOException;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * {@code containerd-shim-kiln-v2}: containerd's runtime v2 shim binary protocol (docs/containerd.md).
 * <ul>
 * <li>{@code start}: starts the long-lived shim (this class's {@code serve}, in its own session, its output on the
 *     bundle's {@code log} fifo), waits until its socket answers, writes {@code BUNDLE/address} and prints only the
 *     address;</li>
 * <li>{@code delete}: cleans up what a dead shim left (the runtime's container, the rootfs mount) and writes a
 *     DeleteResponse on stdout; idempotent, since containerd 1.6 runs it after every task;</li>
 * <li>{@code serve}: the TTRPC server of the Task service.</li>
 * </ul>
 * Flags as containerd passes them, Go style: {@code -namespace -address -publish-binary -id -bundle -debug}.
 */
public final class ShimMain {
    private ShimMain() {
    }

    private static final String SOCKET_DIR = "/run/containerd/s";

    public static void main(String[] args) {
        Map<String, String> flags = new LinkedHashMap<>();
        List<String> rest = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.startsWith("-") && a.length() > 1) {
                String name = a.replaceFirst("^--?", "");
                int eq = name.indexOf('=');
                if (eq >= 0) flags.put(name.substring(0, eq), name.substring(eq + 1));
                else if (name.equals("debug") || name.equals("v") || name.equals("info")) flags.put(name, "true");
                else if (i + 1 < args.length) flags.put(name, args[++i]);
            } else {
                rest.add(a);
            }
        }
        if (flags.containsKey("v")) {
            System.out.println("containerd-shim-kiln-v2: kiln 0.1.0, TTRPC containerd.task.v2.Task");
            return;
        }
        String action = rest.isEmpty() ? "" : rest.getFirst();
        try {
            switch (action) {
                case "start" -> start(flags);
                case "delete" -> delete(flags);
                case "serve" -> serve(flags, Path.of(flags.getOrDefault("bundle", "")).toAbsolutePath());
                case "spare" -> Spare.run(flags);
                default -> {
                    System.err.println("containerd-shim-kiln-v2: unknown action \"" + action
                            + "\" (containerd runs start or delete)");
                    System.exit(125);
                }
            }
        } catch (Exception e) {
            System.err.println("containerd-shim-kiln-v2 " + action + ": " + e.getMessage());
            System.exit(1);
        }
    }

    /**
     * The socket of a task's shim: containerd's runc shim's scheme, sha256 of address/namespace/group, the group
     * being the CRI pod's sandbox id when the bundle's spec names one (one shim per pod), else the task's id.
     */
    static Path socketPath(Map<String, String> flags) throws NoSuchAlgorithmException {
        return socketPath(flags, Path.of("").toAbsolutePath());
    }

    /** One for the JVM: a claim's check computes the socket, and a new ObjectMapper each time cost 1-28 ms of it. */
    private static final ObjectMapper SPEC_READER = new ObjectMapper();

    static Path socketPath(Map<String, String> flags, Path bundle) throws NoSuchAlgorithmException {
        String group = flags.getOrDefault("id", "");
        try {
            var spec = SPEC_READER.readTree(bundle.resolve("config.json").toFile());
            group = spec.path("annotations").path("io.kubernetes.cri.sandbox-id").asText(group);
        } catch (IOException noSpec) {
            // not in a bundle (or no spec yet): the task's own shim
        }
        String key = flags.getOrDefault("address", "") + "/" + flags.getOrDefault("namespace", "") + "/" + group;
        byte[] sum = MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
        return Path.of(SOCKET_DIR, HexFormat.of().formatHex(sum));
    }

    private static void start(Map<String, String> flags) throws Exception {
        Path bundle = Path.of("").toAbsolutePath();
        Path socket = socketPath(flags);
        String address = "unix://" + socket;
        if (!answers(socket)) {
            Files.createDirectories(socket.getParent());
            Files.deleteIfExists(socket);
            List<String> cmd = new ArrayList<>(List.of("setsid", javaBinary(), "-XX:+UseSerialGC",
                    "-XX:TieredStopAtLevel=1", "-Xmx96m", "-Xss512k", "--enable-native-access=ALL-UNNAMED"));
            String aot = System.getProperty("kiln.shim.aot");
            if (aot != null && Files.exists(Path.of(aot))) cmd.addAll(List.of("-XX:AOTCache=" + aot, "-Xlog:aot=off",
                    "-Xlog:cds=off"));
            cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), ShimMain.class.getName()));
            for (var f : flags.entrySet()) {
                if (f.getValue().equals("true") && f.getKey().equals("debug")) cmd.add("-debug");
                else cmd.addAll(List.of("-" + f.getKey(), f.getValue()));
            }
            cmd.add("-socket");
            cmd.add(socket.toString());
            cmd.add("serve");
            Path log = bundle.resolve("log");
            ProcessBuilder.Redirect out = Files.exists(log) ? ProcessBuilder.Redirect.appendTo(log.toFile())
                    : ProcessBuilder.Redirect.DISCARD;
            new ProcessBuilder(cmd).directory(bundle.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(out).redirectError(out).start();
            long deadline = System.nanoTime() + 4_500_000_000L;
            while (!answers(socket)) {
                if (System.nanoTime() > deadline) {
                    throw new IOException("the shim did not listen on " + socket + " within 4.5 s (see containerd's log)");
                }
                Thread.sleep(10);
            }
        }
        Files.writeString(bundle.resolve("address"), address);
        System.out.print(address);
        System.out.flush();
    }

    private static String javaBinary() {
        return ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
    }

    private static boolean answers(Path socket) {
        if (!Files.exists(socket)) return false;
        try (SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            c.connect(UnixDomainSocketAddress.of(socket));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static void delete(Map<String, String> flags) throws Exception {
        Path bundle = Path.of(flags.getOrDefault("bundle", Path.of("").toAbsolutePath().toString()));
        String id = flags.getOrDefault("id", "");
        Path recorded = bundle.resolve("kiln-isolation");
        if (Files.exists(recorded) && !id.isEmpty()) {
            var spec = new ObjectMapper().readTree(bundle.resolve("config.json").toFile());
            KilnRuntime runtime = KilnRuntime.of(Files.readString(recorded).strip(), spec, bundle);
            if (runtime.isolation().equals("vm")) {
                VmTasks.forget(bundle); // the relay died with the shim's kill; its VMM, virtiofsd, cgroups remain
            } else if (!Files.exists(bundle.resolve(TaskService.DELETED))) {
                try {
                    TaskService.run(runtime.command("kill", "--all", id, "9"), "kill " + id);
                } catch (TtrpcServer.RpcError ignored) {
                    // already stopped
                }
                try {
                    TaskService.run(runtime.command("delete", "--force", id), "delete " + id);
                } catch (TtrpcServer.RpcError e) {
                    System.err.println("containerd-shim-kiln-v2 delete: " + e.getMessage());
                }
            }
        }
        TaskService.unmountRootfs(bundle);
        removeDeadSocket(bundle);
        // as containerd's runc shim: the task is reported killed (128 + SIGKILL) now
        Instant now = Instant.now();
        PrintStream out = System.out;
        out.write(DeleteResponse.newBuilder().setExitStatus(137).setExitedAt(TaskService.time(now)).build()
                .toByteArray());
        out.flush();
    }

    /**
     * The socket of a shim that died (killed, so it could not remove it), named in the bundle's {@code address}: as
     * containerd's runc shim's cleanup does. Only under the shims' directory, and only if nothing answers there (a
     * pod's shim serving other tasks keeps it).
     */
    private static void removeDeadSocket(Path bundle) {
        try {
            String address = Files.readString(bundle.resolve("address")).strip();
            if (!address.startsWith("unix://")) return;
            Path socket = Path.of(address.substring(7)).normalize();
            if (socket.getParent() != null && socket.getParent().equals(Path.of(SOCKET_DIR)) && !answers(socket)) {
                Files.deleteIfExists(socket);
            }
        } catch (IOException noAddress) {
            // no shim was started for this bundle
        }
    }

    private static final class Pause {
        static void seconds(long n) {
            try {
                Thread.sleep(n * 1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** The shim for one pod: a process the launcher started for it in the bundle, or a claimed {@link Spare}. */
    static void serve(Map<String, String> flags, Path bundle) throws Exception {
        long t0 = System.nanoTime();
        String id = flags.getOrDefault("id", "");
        ShimLog log = new ShimLog(System.err, id, flags.getOrDefault("debug", "").equals("true"));
        Children.reap();
        BinaryLogger.namespace(flags.getOrDefault("namespace", "default"));
        Path socket = Path.of(flags.get("socket"));
        EventPublisher events = new EventPublisher(flags.getOrDefault("namespace", "default"),
                flags.getOrDefault("ttrpc-address", System.getenv("TTRPC_ADDRESS")), flags.getOrDefault("publish-binary", "containerd"),
                flags.getOrDefault("address", ""), log);
        CountDownLatch done = new CountDownLatch(1);
        TaskService tasks = new TaskService(events, log, done::countDown);
        ServerSocketChannel server = new TtrpcServer(TaskService.NAME, tasks, log).serve(socket);
        log.debug("serving " + (System.nanoTime() - t0) / 1_000_000 + " ms after serve began");
        // a shim whose start containerd gave up on (it removes the bundle) must not linger without a task
        Thread.ofVirtual().start(() -> {
            while (true) {
                Pause.seconds(1);
                if (tasks.idle() && !Files.exists(bundle.resolve("config.json"))) {
                    log.line("bundle " + bundle + " is gone and no task is left");
                    done.countDown();
                    return;
                }
            }
        });
        done.await();
        // the Shutdown response goes out before the socket closes
        Thread.sleep(50);
        events.close();
        server.close();
        Files.deleteIfExists(socket);
        log.line("shim exits");
        System.exit(0);
    }
}
