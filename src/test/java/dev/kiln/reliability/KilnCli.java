package dev.kiln.reliability;

import dev.kiln.testing.KilndProcess;
import sun.misc.Signal;
import sun.misc.SignalHandler;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The kiln CLI against one {@link KilndProcess}: in this JVM ({@link #kiln}, fast, for commands that print through
 * the CLI's writers) or as its own process ({@link #process}, for logs and exec, whose output goes to the process's
 * stdout). Both run the daemon's own build: the in-JVM CLI is loaded from the daemon's copy of the jar in a class
 * loader of its own, so it is the same code as the daemon and immune to builds rewriting target/classes meanwhile.
 * In-process attached runs install the CLI's signal proxy in this JVM; {@link #close} puts the handlers that were
 * there before back.
 */
final class KilnCli implements AutoCloseable {

    record Result(int exitCode, String out, String err) {
        List<String> errLines() {
            return err.lines().toList();
        }

        @Override
        public String toString() {
            return "exit " + exitCode + "\nstdout: " + out + "\nstderr: " + err;
        }
    }

    private static final List<String> PROXIED = List.of("INT", "TERM", "HUP", "QUIT", "USR1", "USR2");

    private final KilndProcess daemon;
    private final URLClassLoader loader;
    private final Method main;
    private final Map<String, SignalHandler> savedHandlers = new LinkedHashMap<>();

    KilnCli(KilndProcess daemon) {
        this.daemon = daemon;
        try {
            loader = new URLClassLoader("kiln-cli", new URL[] {daemon.jar().toUri().toURL()},
                    ClassLoader.getPlatformClassLoader());
            main = loader.loadClass("dev.kiln.cli.Main").getMethod("run", String[].class, PrintWriter.class,
                    PrintWriter.class);
        } catch (MalformedURLException | ReflectiveOperationException e) {
            throw new IllegalStateException("cannot load the kiln CLI from " + daemon.jar(), e);
        }
        for (String name : PROXIED) {
            try {
                Signal sig = new Signal(name);
                SignalHandler old = Signal.handle(sig, SignalHandler.SIG_DFL);
                Signal.handle(sig, old);
                savedHandlers.put(name, old);
            } catch (IllegalArgumentException reserved) {
                // the JVM keeps this one
            }
        }
    }

    /** {@code kiln --host HOST ARGS...} in this JVM. */
    Result kiln(String... args) {
        List<String> all = new ArrayList<>(List.of("--host", daemon.host()));
        all.addAll(List.of(args));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code;
        try {
            code = (int) main.invoke(null, all.toArray(String[]::new), new PrintWriter(out), new PrintWriter(err));
        } catch (IllegalAccessException e) {
            throw new IllegalStateException(e);
        } catch (InvocationTargetException e) {
            throw new AssertionError("kiln " + String.join(" ", args) + " threw", e.getCause());
        }
        return new Result(code, out.toString(), err.toString());
    }

    Result ok(String... args) {
        Result r = kiln(args);
        if (r.exitCode() != 0) {
            throw new AssertionError("kiln " + String.join(" ", args) + " failed: " + r);
        }
        return r;
    }

    /** {@code kiln --host HOST ARGS...} as its own process (the same build as the daemon). */
    Result process(Duration timeout, String... args) {
        Path out = null;
        Path err = null;
        try {
            out = Files.createTempFile("kiln-cli-", ".out");
            err = Files.createTempFile("kiln-cli-", ".err");
            Process p = new ProcessBuilder(daemon.cli(args))
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly().waitFor();
                throw new AssertionError("kiln " + String.join(" ", args) + " did not finish within "
                        + timeout.toSeconds() + " s; stderr: " + Files.readString(err));
            }
            return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                    Files.readString(err, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new AssertionError("cannot run the kiln CLI", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        } finally {
            for (Path f : new Path[] {out, err}) {
                try {
                    if (f != null) {
                        Files.deleteIfExists(f);
                    }
                } catch (IOException ignored) {
                    // a temp file
                }
            }
        }
    }

    @Override
    public void close() {
        savedHandlers.forEach((name, handler) -> Signal.handle(new Signal(name), handler));
        try {
            loader.close();
        } catch (IOException ignored) {
            // the jar copy is deleted with the daemon
        }
    }
}
