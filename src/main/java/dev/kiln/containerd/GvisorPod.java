package dev.kiln.containerd;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * An app container of a CRI pod under kiln's gvisor isolation: it runs in the pod sandbox's Sentry, runsc's own
 * multi-container sandbox, which runsc joins from the CRI annotations containerd puts in the spec
 * ({@code io.kubernetes.cri.container-type=container}, {@code io.kubernetes.cri.sandbox-id}) through the state both
 * share ({@code .kiln-runsc}). Two things differ from a task whose process is the shim's child: runsc hands the
 * stdio of {@code runsc start} (not of create) to the container's process, and the pid runsc reports is the
 * sandbox's, so the exit comes from {@code runsc wait ID} (which prints {@code {"id":…,"exitStatus":N}}, N as a shell
 * reports it), as gVisor's own shim does.
 */
final class GvisorPod {
    private GvisorPod() {
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Whether a task with this spec is an app container in a gVisor pod's sandbox. */
    static boolean member(KilnRuntime runtime, JsonNode spec) {
        boolean member = runtime.isolation().equals("gvisor") && spec.path("annotations")
                .path("io.kubernetes.cri.container-type").asText("").equals("container");
        if (member && spec.path("process").path("terminal").asBoolean(false)) {
            throw TtrpcServer.RpcError.unimplemented("a terminal for a container in a kiln-gvisor pod is not "
                    + "supported by containerd-shim-kiln-v2 (use tty: false)");
        }
        return member;
    }

    /** {@code runsc start ID} with the process's stdio; then watches its exit through {@code runsc wait ID}. */
    static void start(KilnRuntime runtime, String id, ShimProcess process, Runnable onExit) throws IOException,
            InterruptedException {
        Path runtimeLog = runtime.bundle().resolve("runtime.log");
        ProcessBuilder pb = new ProcessBuilder(runtime.command("start", id));
        RandomAccessFile stdinHold = null;
        if (process.stdin.kind() == StdioUri.Kind.FIFO) {
            // as ShimProcess.launch: held read-write so runsc's read-only open does not wait for the client
            stdinHold = new RandomAccessFile(process.stdin.path().toFile(), "rw");
            pb.redirectInput(ProcessBuilder.Redirect.from(process.stdin.path().toFile()));
        } else {
            pb.redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
        }
        pb.redirectOutput(ShimProcess.output(process.stdout));
        pb.redirectError(process.stderr.kind() == StdioUri.Kind.NONE
                ? ProcessBuilder.Redirect.appendTo(runtimeLog.toFile()) : ShimProcess.output(process.stderr));
        try {
            Process start = Children.start(pb);
            if (!start.waitFor(60, TimeUnit.SECONDS)) {
                start.destroyForcibly();
                throw TtrpcServer.RpcError.precondition("runsc start " + id + " did not finish in 60 s");
            }
            if (start.exitValue() != 0) {
                String last = ShimProcess.lastError(runtimeLog);
                throw TtrpcServer.RpcError.precondition("runsc start " + id + " exited " + start.exitValue()
                        + (last.isEmpty() ? "" : ": " + last));
            }
        } finally {
            if (stdinHold != null) stdinHold.close();
        }
        process.watch(exit(runtime, id), onExit);
    }

    /** The container's exit as {@code runsc wait} reports it; 255 if runsc cannot tell (the sandbox is gone). */
    private static CompletableFuture<Children.Exit> exit(KilnRuntime runtime, String id) throws IOException {
        Path out = runtime.bundle().resolve("runsc-wait.json");
        Process wait = Children.start(new ProcessBuilder(runtime.command("wait", id))
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectOutput(out.toFile())
                .redirectError(ProcessBuilder.Redirect.appendTo(runtime.bundle().resolve("runtime.log").toFile())));
        return wait.onExit().thenApply(p -> {
            int status = 255;
            try {
                JsonNode result = JSON.readTree(Files.readString(out));
                if (p.exitValue() == 0 && result != null && result.has("exitStatus")) {
                    status = result.path("exitStatus").asInt(255);
                }
                Files.deleteIfExists(out);
            } catch (IOException unreadable) {
                // runsc said nothing usable: the status stays unknown (255)
            }
            return new Children.Exit(status, Instant.now());
        });
    }
}
