package dev.kiln.network;

import dev.kiln.KilnException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;

/** Runs a host tool (ip, a CNI plugin) with a bounded wait, optional stdin and extra environment. */
record Exec(int code, String out, String err) {

    static final Duration TIMEOUT = Duration.ofSeconds(30);

    static Exec run(List<String> cmd, String stdin) {
        return run(cmd, stdin, Map.of());
    }

    static Exec run(List<String> cmd, String stdin, Map<String, String> env) {
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.environment().putAll(env);
            Process p = pb.start();
            FutureTask<String> out = new FutureTask<>(() -> new String(p.getInputStream().readAllBytes(),
                    StandardCharsets.UTF_8));
            FutureTask<String> err = new FutureTask<>(() -> new String(p.getErrorStream().readAllBytes(),
                    StandardCharsets.UTF_8));
            Thread.ofVirtual().start(out);
            Thread.ofVirtual().start(err);
            try (var in = p.getOutputStream()) {
                if (stdin != null) {
                    in.write(stdin.getBytes(StandardCharsets.UTF_8));
                }
            }
            if (!p.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new KilnException(KilnException.Kind.INTERNAL, String.join(" ", cmd) + " timed out");
            }
            return new Exec(p.exitValue(), out.get(), err.get());
        } catch (IOException | ExecutionException e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot run " + cmd.getFirst() + ": "
                    + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while running " + cmd.getFirst());
        }
    }

    Exec orFail(String what) {
        if (code != 0) {
            throw new KilnException(KilnException.Kind.INTERNAL, what + ": " + firstLine());
        }
        return this;
    }

    String firstLine() {
        String text = err.isBlank() ? out : err;
        return text.lines().filter(l -> !l.isBlank()).findFirst().orElse("exit " + code).strip();
    }
}
