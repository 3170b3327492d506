package dev.kiln.audit;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The distinct syscalls that running processes make, with counts: {@code strace -f -c} attached to them (every
 * thread, and every process they start). Attached rather than started under strace, so the sandbox runs exactly as
 * kiln starts it; what happens before the attach (the runtime's own set-up, QEMU's first milliseconds) is not
 * counted. Ends when the processes end, or after the window (strace then detaches and the processes go on).
 *
 * @param calls   syscall name (strace's) → calls, most called first
 * @param errors  syscall name → calls that failed
 * @param ended   whether the processes ended within the window (false: the window cut the count)
 * @param tracedSeconds from the attach to the end of the count
 */
public record SyscallUsage(Map<String, Long> calls, Map<String, Long> errors, boolean ended, double tracedSeconds) {

    public SyscallUsage {
        calls = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(calls));
        errors = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(errors));
    }

    public int distinct() {
        return calls.size();
    }

    /** strace attached to processes; {@link #finish} ends the count. */
    public static final class Trace {
        private final Process strace;
        private final Path output;
        private final Path log;
        private final long startedNanos = System.nanoTime();

        private Trace(Process strace, Path output, Path log) {
            this.strace = strace;
            this.output = output;
            this.log = log;
        }

        /**
         * Waits until the traced processes have ended or {@code window} has passed since the attach, then returns
         * the count. The output files are removed.
         */
        public SyscallUsage finish(Duration window) throws IOException {
            try {
                long left = window.toNanos() - (System.nanoTime() - startedNanos);
                boolean ended = strace.waitFor(Math.max(left, 0), TimeUnit.NANOSECONDS);
                if (!ended) {
                    strace.destroy(); // SIGTERM: strace detaches and writes its summary
                    // a SIGTERM was once not acted on within 10 s (a CI run; cause not found): a second one after 5 s
                    if (!strace.waitFor(5, TimeUnit.SECONDS)) {
                        strace.destroy();
                    }
                    if (!strace.waitFor(10, TimeUnit.SECONDS)) {
                        strace.destroyForcibly();
                        throw new IOException("strace did not detach within 10 s");
                    }
                }
                double traced = (System.nanoTime() - startedNanos) / 1e9;
                String text = Files.exists(output) ? Files.readString(output) : "";
                if (!ended || strace.exitValue() == 0 || text.contains("total")) {
                    return parse(text, ended, traced);
                }
                throw new IOException("strace failed: " + firstLine(log));
            } catch (InterruptedException e) {
                strace.destroyForcibly();
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while counting syscalls");
            } finally {
                Files.deleteIfExists(output);
                Files.deleteIfExists(log);
            }
        }

        /** Stops counting at once (on an error path), leaving the processes running. */
        public void cancel() {
            strace.destroy();
            try {
                strace.waitFor(10, TimeUnit.SECONDS);
                Files.deleteIfExists(output);
                Files.deleteIfExists(log);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (IOException ignored) {
                // temporary files
            }
        }
    }

    /** Attaches {@code strace -f -c} to {@code pids}; {@code work}: where its temporary output goes. */
    public static Trace attach(List<Long> pids, Path work) throws IOException {
        Path output = Files.createTempFile(work, "strace-", ".txt");
        Path log = Files.createTempFile(work, "strace-", ".log");
        List<String> cmd = new ArrayList<>(List.of("strace", "-f", "-qq", "-c", "-U", "name,calls,errors", "-S",
                "calls", "-o", output.toString()));
        for (long pid : pids) {
            cmd.add("-p");
            cmd.add(Long.toString(pid));
        }
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(log.toFile()).redirectErrorStream(true).start();
        } catch (IOException e) {
            Files.deleteIfExists(output);
            Files.deleteIfExists(log);
            throw new IOException("cannot run strace (apt-get install strace): " + e.getMessage(), e);
        }
        return new Trace(p, output, log);
    }

    /** strace's {@code -c -U name,calls,errors} table. */
    static SyscallUsage parse(String text, boolean ended, double traced) {
        Map<String, Long> calls = new LinkedHashMap<>();
        Map<String, Long> errors = new LinkedHashMap<>();
        for (String line : text.lines().toList()) {
            String[] f = line.strip().split("\\s+");
            if (f.length < 2 || f[0].equals("syscall") || f[0].equals("total") || f[0].startsWith("-")
                    || !f[1].matches("\\d+")) {
                continue;
            }
            calls.merge(f[0], Long.parseLong(f[1]), Long::sum);
            if (f.length > 2 && f[2].matches("\\d+")) {
                errors.merge(f[0], Long.parseLong(f[2]), Long::sum);
            }
        }
        return new SyscallUsage(calls, errors, ended, traced);
    }

    private static String firstLine(Path log) {
        try {
            return Files.readString(log).lines().filter(l -> !l.isBlank()).findFirst().orElse("no output");
        } catch (IOException e) {
            return "no output";
        }
    }
}
