package dev.kiln.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A host user of its own for a test: no home, no login shell, no groups but its own, made with {@code useradd} and
 * removed with {@code userdel} on {@link #close} (use it in try-with-resources, so it goes when the test fails too).
 * Commands run as it through {@code setpriv --reuid --regid --clear-groups} and {@code /bin/sh -c}: setpriv keeps
 * root's capabilities until its own execve, so the path of a command it runs directly is looked up with
 * CAP_DAC_OVERRIDE; the shell in between runs with none, so every path the script touches is checked as the user's.
 */
public final class UnprivilegedUser implements AutoCloseable {
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    /** What a command run as the user did. */
    public record Result(int exitCode, String out, String err) {
        @Override
        public String toString() {
            return "exit " + exitCode + "\nstdout: " + out + "\nstderr: " + err;
        }
    }

    private final String name;

    private UnprivilegedUser(String name) {
        this.name = name;
    }

    /** Adds the user (skipping the test where useradd or setpriv is missing). */
    public static UnprivilegedUser create() {
        Command.require("useradd", "passwd");
        Command.require("setpriv", "util-linux");
        byte[] b = new byte[4];
        new SecureRandom().nextBytes(b);
        String name = "kiln-t" + HexFormat.of().formatHex(b);
        Command.run("useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name);
        return new UnprivilegedUser(name);
    }

    public String name() {
        return name;
    }

    /** {@code /bin/sh -c script sh args...} as the user, from {@code /}, with a plain PATH and nothing else inherited. */
    public Result sh(String script, Object... args) {
        List<String> cmd = new ArrayList<>(List.of("setpriv", "--reuid=" + name, "--regid=" + name, "--clear-groups",
                "--", "/bin/sh", "-c", script, "sh"));
        for (Object a : args) {
            cmd.add(a.toString());
        }
        Path out = null;
        Path err = null;
        try {
            out = Files.createTempFile("kiln-user-", ".out");
            err = Files.createTempFile("kiln-user-", ".err");
            ProcessBuilder pb = new ProcessBuilder(cmd).directory(Path.of("/").toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(out.toFile()).redirectError(err.toFile());
            pb.environment().clear();
            pb.environment().putAll(Map.of("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL", "C"));
            Process p = pb.start();
            if (!p.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                Command.destroyTree(p.toHandle());
                throw new IllegalStateException("as " + name + ", timed out: " + script);
            }
            // decoded leniently: what a user reads may be binary (a database)
            return new Result(p.exitValue(), new String(Files.readAllBytes(out), StandardCharsets.UTF_8),
                    new String(Files.readAllBytes(err), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run as " + name + ": " + script, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        } finally {
            FileTree.deleteRecursively(out);
            FileTree.deleteRecursively(err);
        }
    }

    /** Removes the user and its group (its processes have all ended: each {@link #sh} waited for its own). */
    @Override
    public void close() {
        Command.run("userdel", name); // USERGROUPS_ENAB (Debian's default) removes its group too
        if (Command.run("getent", "group").lines().anyMatch(l -> l.startsWith(name + ":"))) {
            Command.run("groupdel", name);
        }
    }
}
