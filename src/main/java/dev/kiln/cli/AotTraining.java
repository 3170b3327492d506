package dev.kiln.cli;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The training runs behind the CLI's AOT caches (scripts/aot-cache): the CLI's hot commands ({@link HotCommands}),
 * or with {@code all} the other commands (picocli's model, Jackson: target/kiln-all.aot), run against a throw-away
 * kilnd, so the classes they load (CLI, HTTP client, JSON) go into the cache. A JVM loads every class of its AOT cache
 * at start, so the trained JVM runs the commands and nothing else: kilnd in the same JVM put ~4,000 classes (Jetty,
 * SQLite, TLS) into every `kiln ps`'s start, and the training's own work (starting kilnd and waiting for it, writing
 * the option index) another ~250 (ProcessBuilder, the JDK's logger, regex, ForkJoinPool, the class-file reader). So
 * this class runs twice: {@code AotTraining DIR LAUNCHER hot|all} (scripts/aot-cache, a plain JVM) writes the index,
 * starts kilnd and runs the launcher with {@code KILN_AOT_TRAIN}, which starts {@code AotTraining unix://SOCKET
 * [all]} with the cache's flags: the trained JVM. Not part of kiln's user interface.
 */
public final class AotTraining {
    private AotTraining() {
    }

    public static void main(String[] args) throws Exception {
        if (args[0].startsWith("unix://")) {
            commands(args[0], args.length > 1 && args[1].equals("all"));
            return;
        }
        Path dir = Path.of(args[0]);
        Path launcher = Path.of(args[1]).toAbsolutePath();
        boolean all = args[2].equals("all");
        if (!all) {
            // bin/kiln's path for it: the hot commands read their options' annotations from it (cli/OptionIndex)
            List<Class<?>> classes = new java.util.ArrayList<>(List.of(KilnCommand.class));
            HotCommands.HOT.forEach(name -> classes.add(Commands.command(name).getClass()));
            HotCommands.HOT_IMAGE.forEach(name -> classes.add(Commands.imageCommand(name).getClass()));
            OptionIndex.write(classes, launcher.getParent().resolveSibling("target").resolve("kiln-options.idx"));
        }
        Path run = dir.resolve("run");
        Process kilnd = startKilnd(dir.resolve("root"), run, dir.resolve("kilnd.log"));
        try {
            List<String> argv = new java.util.ArrayList<>(
                    List.of(launcher.toString(), "unix://" + run.resolve("kiln.sock")));
            if (all) {
                argv.add("all");
            }
            ProcessBuilder pb = new ProcessBuilder(argv).inheritIO();
            pb.environment().put("KILN_AOT_TRAIN", all ? "all" : "1");
            pb.environment().put("KILN_JAVA_HOME", System.getProperty("java.home"));
            pb.environment().remove("JAVA_TOOL_OPTIONS");
            int code = pb.start().waitFor();
            if (code != 0) {
                throw new IOException("the AOT training run exited with " + code);
            }
        } finally {
            kilnd.destroy();
            if (!kilnd.waitFor(20, TimeUnit.SECONDS)) {
                kilnd.destroyForcibly().waitFor();
            }
        }
    }

    /** The trained JVM's work: the commands, in this JVM, against the kilnd at {@code host}. */
    private static void commands(String host, boolean all) {
        Main.prepare(new String[] {"ps"}); // as every CLI process does first
        // Most commands as people type them, with no --host: the CLI then reads KILN_HOST (System.getenv, whose
        // first call loads ProcessEnvironment and ProcessImpl) and finds kilnd's socket under --run-root; one ps
        // names the host, for that path.
        Path run = Path.of(host.substring("unix://".length())).getParent();
        String[] local = {"--root", run.resolveSibling("root").toString(), "--run-root", run.toString()};
        // The hot commands only (HotCommands): every class in the cache is loaded at each start, so classes of
        // other paths (picocli's model, Jackson) would cost the hot commands more than the cache saves them. The
        // image reference is invalid so that create fails in kilnd, not in a pull.
        String image = "Not-An-Image";
        List<String[]> runs = List.of(
                new String[] {"--version"},
                new String[] {"--host", host, "ps"},
                on(local, "ps"),
                on(local, "ps", "-a"),
                on(local, "ps", "-aq"),
                on(local, "ps", "--format", "json"),
                on(local, "inspect", "nothing-here"),
                on(local, "create", "--name", "t", "-e", "A=1", image, "true"),
                on(local, "run", "--rm", "--network", "none", image, "true"),
                on(local, "run", "-d", "-p", "8080:80", image, "true"),
                on(local, "start", "nothing-here"),
                on(local, "exec", "-e", "A=1", "nothing-here", "true"),
                on(local, "logs", "nothing-here"),
                on(local, "stop", "nothing-here"),
                on(local, "kill", "nothing-here"),
                on(local, "rm", "-f", "nothing-here"),
                // a registry that refuses at once (port 9): the pull fails in kilnd, not on the network
                on(local, "pull", "-q", "127.0.0.1:9/nothing-here:1"),
                on(local, "image", "mount", "nothing-here:1"),
                on(local, "image", "unmount", "nothing-here:1"));
        if (all) {
            // the cache of the other commands (bin/kiln picks it for them): picocli's model, help, errors,
            // Jackson, a pull that fails, the listings
            runs = List.of(
                    new String[] {"--help"},
                    new String[] {"images", "--help"},
                    new String[] {"--host", host, "images"},
                    new String[] {"--host", host, "images", "--format", "json"},
                    new String[] {"--host", host, "image", "inspect", "nothing-here"},
                    new String[] {"--host", host, "network", "ls"},
                    new String[] {"--host", host, "top", "nothing-here"},
                    new String[] {"--host", host, "port", "nothing-here"},
                    new String[] {"--host", host, "pull", "nothing-here:1"},
                    new String[] {"--host", host, "rmi", "nothing-here:1"},
                    new String[] {"pull", "--bad-flag"},
                    new String[] {"no-such-command"});
        }
        for (String[] args1 : runs) {
            Main.run(args1, new Main.Stdio(new ByteArrayInputStream(new byte[0]), new ByteArrayOutputStream(),
                    new ByteArrayOutputStream()));
        }
    }

    private static String[] on(String[] where, String... command) {
        String[] all = java.util.Arrays.copyOf(where, where.length + command.length);
        System.arraycopy(command, 0, all, where.length, command.length);
        return all;
    }

    /** {@code kiln daemon} on the training's own roots, with no config file; returns once its socket answers. */
    private static Process startKilnd(Path root, Path run, Path log) throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), Main.class.getName(), "daemon", "--root", root.toString(),
                "--run-root", run.toString(), "--config", "/nonexistent")
                .redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().remove("JAVA_TOOL_OPTIONS"); // the AOT flags are this JVM's, not kilnd's
        Process p = pb.start();
        Path socket = run.resolve("kiln.sock");
        DaemonClient probe = new DaemonClient(socket);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline && p.isAlive()) {
            if (Files.exists(socket)) {
                try {
                    probe.connect().close();
                    return p;
                } catch (IOException notYet) {
                    // listening soon
                }
            }
            Thread.sleep(50);
        }
        p.destroyForcibly();
        throw new IOException("the training's kilnd did not start (see " + log + ")");
    }
}
