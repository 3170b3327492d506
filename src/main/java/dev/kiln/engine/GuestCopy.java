package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.isolation.AttachConnection;
import dev.kiln.isolation.ExitStatus;
import dev.kiln.isolation.RunningProcess;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;

/**
 * A copy into a running sandbox whose root the host must not write (a vm: its disk is its guest's; gvisor: the
 * Sentry's cache and memory hold the truth), made by the sandbox itself: the client's archive streamed into an exec of
 * the image's {@code tar -x} as root. The host only forwards bytes; the unpacking, and any path trick in the archive,
 * happens inside the sandbox's own walls, where it can only reach what the sandbox can. Needs {@code tar} in the
 * image (busybox, Debian and Alpine images have one); without it the copy is refused with that reason.
 */
final class GuestCopy {
    private static final int MAX_ERROR = 4096;
    private static final Duration FINISH = Duration.ofMinutes(10);

    private GuestCopy() {
    }

    private static RunningProcess exec(Sandboxes sandboxes, Sandbox s, List<String> cmd) {
        return sandboxes.exec(s.id(), "cp-" + UUID.randomUUID(), new ExecConfig(cmd, null, "/", "0:0", false, true,
                false, true, true));
    }

    private static boolean missing(KilnException e) {
        return e.exitCode() != null && (e.exitCode() == 127 || e.exitCode() == 126);
    }

    /** What an exec ended with: its status and (bounded) output. */
    private record Run(int code, String out, String err) {
        String firstErrorLine() {
            String text = err.isBlank() ? out : err;
            return text.lines().filter(l -> !l.isBlank()).findFirst().orElse("exit " + code).strip()
                    .replaceAll("\\p{Cntrl}", "?");
        }
    }

    static void extract(Sandboxes sandboxes, Sandbox s, String path, InputStream in, boolean keepOwners) {
        List<String> cmd = new ArrayList<>(List.of("tar", "-x", "-f", "-", "-C", path));
        if (!keepOwners) {
            cmd.add(2, "-o"); // owned by the extracting user, root (Docker's default without copyUIDGID)
        }
        Run r = run(sandboxes, s, cmd, in);
        if (r.code() != 0) {
            throw KilnException.invalid("copy into " + path + " of sandbox " + s.name() + " failed in it: "
                    + r.firstErrorLine());
        }
    }

    /**
     * The stat of {@code path} as the running sandbox sees it ({@code stat} inside it, the last component not
     * followed): what {@code docker cp} asks before it copies in (HEAD of the archive), to know a directory.
     */
    static SandboxFiles.PathStat stat(Sandboxes sandboxes, Sandbox s, String path) {
        Run r = run(sandboxes, s, List.of("stat", "-c", "%s %f %Y", path), null);
        String[] f = r.out().strip().split(" ");
        if (r.code() != 0 || f.length != 3) {
            throw KilnException.notFound("Could not find the file " + path + " in container " + s.name());
        }
        try {
            String trimmed = path.replaceAll("/+$", "");
            String name = trimmed.isEmpty() ? "/" : trimmed.substring(trimmed.lastIndexOf('/') + 1);
            return new SandboxFiles.PathStat(name, Long.parseLong(f[0]), SandboxFiles.goMode(Integer.parseInt(f[1],
                    16)), java.time.Instant.ofEpochSecond(Long.parseLong(f[2])).toString(), "");
        } catch (NumberFormatException e) {
            throw KilnException.notFound("Could not find the file " + path + " in container " + s.name());
        }
    }

    /** Runs {@code cmd} (else {@code busybox cmd}) in the sandbox as root, {@code stdin} (may be null) fed to it. */
    private static Run run(Sandboxes sandboxes, Sandbox s, List<String> cmd, InputStream stdin) {
        RunningProcess p;
        try {
            p = exec(sandboxes, s, cmd);
        } catch (KilnException e) {
            if (!missing(e)) {
                throw e;
            }
            List<String> busybox = new ArrayList<>(cmd);
            busybox.addFirst("busybox"); // a busybox image without the applet's link still has the applet
            try {
                p = exec(sandboxes, s, busybox);
            } catch (KilnException again) {
                if (missing(again)) {
                    throw KilnException.invalid("cannot copy with running " + s.isolation() + " sandbox " + s.name()
                            + ": the copy runs the image's " + cmd.getFirst() + " inside it, and the image has none "
                            + "(stop it and copy, or copy before it starts)");
                }
                throw again;
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try (AttachConnection c = p.attach()) {
            CompletableFuture<Void> reading = CompletableFuture.runAsync(() -> {
                try {
                    AttachConnection.Frame f;
                    while ((f = c.read()) != null && f.type() != AttachConnection.Frame.EXIT) {
                        ByteArrayOutputStream to = f.type() == AttachConnection.Frame.STDOUT ? out
                                : f.type() == AttachConnection.Frame.STDERR ? err : null;
                        if (to != null) {
                            synchronized (to) {
                                to.write(f.payload(), 0, Math.min(f.payload().length, Math.max(0, MAX_ERROR
                                        - to.size())));
                            }
                        }
                    }
                } catch (IOException e) {
                    // the exit status says how it ended
                }
            }, r -> Thread.ofVirtual().start(r));
            if (stdin != null) {
                byte[] buffer = new byte[64 * 1024];
                int n;
                while ((n = stdin.read(buffer)) > 0) {
                    c.stdin(java.util.Arrays.copyOf(buffer, n));
                }
            }
            c.closeStdin();
            Optional<ExitStatus> status = p.await(FINISH);
            try {
                reading.get(2, java.util.concurrent.TimeUnit.SECONDS); // its last output; closing the attach ends it
            } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
                // the status is what matters; the output only words a failure
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            int code = status.map(ExitStatus::exitCode).orElseThrow(() -> new KilnException(
                    KilnException.Kind.INTERNAL, cmd.getFirst() + " in sandbox " + s.name() + " did not finish"));
            synchronized (out) {
                synchronized (err) {
                    return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
                }
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "copy with sandbox " + s.name() + ": "
                    + e.getMessage(), e);
        }
    }
}
