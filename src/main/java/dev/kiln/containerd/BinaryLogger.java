package dev.kiln.containerd;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * containerd's {@code binary://} stdio (its shims' binary logging driver): the program at the URI's path, its
 * query's keys and first values as arguments ({@code ?k=v} → {@code k v}), started with only
 * {@code CONTAINER_ID} (the process's id: the task's, or the exec's) and {@code CONTAINER_NAMESPACE} in its
 * environment, the process's stdout on its fd 3, stderr on fd 4, and fd 5 a pipe it writes a byte to, or closes,
 * once ready; the process starts only then. The process's stdin is {@code /dev/null}. The two pipes are fifos in the
 * process's directory (unlinked once both ends are open), which a shell opens onto fds 3 and 4 before it execs the
 * logger: Java cannot hand a child extra descriptors. The logger sees EOF when the process (and whatever inherited
 * its stdio) is gone; it gets SIGTERM, and SIGKILL after 12 s, if it is still running a little after the process
 * exited, as containerd's runc shim does on the process's close.
 */
final class BinaryLogger {

    private static volatile String namespace = "default";

    /** The containerd namespace this shim serves (one per shim: its socket is derived from it). */
    static void namespace(String ns) {
        namespace = ns;
    }

    final Path out;
    final Path err;
    private final Process logger;
    private final List<RandomAccessFile> holds;

    private BinaryLogger(Path out, Path err, Process logger, List<RandomAccessFile> holds) {
        this.out = out;
        this.err = err;
        this.logger = logger;
        this.holds = holds;
    }

    /** Starts the logger {@code uri} names for process {@code id}, its fifos in {@code dir}; returns once ready. */
    static BinaryLogger start(URI uri, String id, Path dir) throws IOException, InterruptedException {
        Path binary = Path.of(uri.getPath());
        if (!Files.isExecutable(binary)) {
            throw TtrpcServer.RpcError.invalid("logging binary " + binary + " (" + uri + ") is not an executable file");
        }
        Path out = dir.resolve("log-stdout");
        Path err = dir.resolve("log-stderr");
        for (Path fifo : List.of(out, err)) {
            Files.deleteIfExists(fifo);
            Process mk = Children.start(new ProcessBuilder("mkfifo", "-m", "600", fifo.toString())
                    .redirectErrorStream(true));
            String why = new String(mk.getInputStream().readAllBytes()).strip();
            if (mk.waitFor() != 0) throw TtrpcServer.RpcError.precondition("mkfifo " + fifo + ": " + why);
        }
        // held read-write while the shell opens them read-only (that open would wait for a writer) and until the
        // runtime has opened them for the process
        List<RandomAccessFile> holds = List.of(new RandomAccessFile(out.toFile(), "rw"),
                new RandomAccessFile(err.toFile(), "rw"));
        List<String> cmd = new ArrayList<>(List.of("/bin/sh", "-c",
                "o=$1 e=$2; shift 2; exec \"$@\" 3<\"$o\" 4<\"$e\" 5>&1 >/dev/null", "sh", out.toString(),
                err.toString(), binary.toString()));
        cmd.addAll(arguments(uri));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectError(ProcessBuilder.Redirect.INHERIT);   // the shim's log: containerd's
        pb.environment().clear();
        pb.environment().put("CONTAINER_ID", id);
        pb.environment().put("CONTAINER_NAMESPACE", namespace);
        Process logger = Children.start(pb);
        BinaryLogger started = new BinaryLogger(out, err, logger, holds);
        InputStream ready = logger.getInputStream();
        CompletableFuture<Integer> signal = CompletableFuture.supplyAsync(() -> {
            try {
                return ready.read();   // a byte, or -1 when the logger closed fd 5 (or exited)
            } catch (IOException e) {
                return -1;
            }
        }, r -> Thread.ofVirtual().start(r));
        try {
            signal.get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            started.stop();
            throw TtrpcServer.RpcError.precondition("logging binary " + binary + " did not signal ready on fd 5 "
                    + "within 10 s");
        }
        if (!logger.isAlive() && logger.exitValue() != 0) {
            started.release();
            throw TtrpcServer.RpcError.precondition("logging binary " + binary + " exited " + logger.exitValue()
                    + " before the process started");
        }
        return started;
    }

    /** The URI's query as arguments, as containerd builds them: each key, then its first value if it has one. */
    static List<String> arguments(URI uri) {
        List<String> args = new ArrayList<>();
        String query = uri.getRawQuery();
        if (query == null || query.isEmpty()) return args;
        for (String pair : query.split("&")) {
            if (pair.isEmpty()) continue;
            int eq = pair.indexOf('=');
            String key = eq < 0 ? pair : pair.substring(0, eq);
            args.add(URLDecoder.decode(key, StandardCharsets.UTF_8));
            if (eq >= 0) args.add(URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
        }
        return args;
    }

    /** The runtime has the fifos open for the process (or failed): the shim lets go of them. */
    void release() {
        for (RandomAccessFile h : holds) {
            try {
                h.close();
            } catch (IOException ignored) {
                // already closed
            }
        }
        try {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        } catch (IOException ignored) {
            // the bundle is going away anyway
        }
    }

    /** After the process exited: the logger normally ends at EOF; else SIGTERM, and SIGKILL after 12 s. */
    void stop() {
        release();
        try {
            if (logger.waitFor(2, TimeUnit.SECONDS)) return;
            logger.destroy();
            if (!logger.waitFor(12, TimeUnit.SECONDS)) logger.destroyForcibly();
        } catch (InterruptedException e) {
            logger.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
