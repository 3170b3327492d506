package dev.kiln.cli;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The training run behind the CLI's AOT cache (scripts/aot-cache): runs the CLI's hot commands against a throw-away
 * kilnd, so the classes they load (CLI, HTTP client, JSON) go into the cache. kilnd runs in a process of its own:
 * in this JVM its classes (Jetty, SQLite, the registry client, TLS: ~4,000 of them) went into the CLI's cache too,
 * and a JVM loads every class of its AOT cache at start, so each `kiln ps` paid for the daemon's classes. For the
 * same reason the hot commands ({@link HotCommands}) get a cache of their own; with the argument {@code all} this
 * trains the cache of the other commands (picocli's model, Jackson), target/kiln-all.aot. Not part of kiln's user
 * interface.
 */
public final class AotTraining {
    private AotTraining() {
    }

    public static void main(String[] args) throws Exception {
        if (args[0].equals("--option-index")) {
            List<Class<?>> classes = new java.util.ArrayList<>(List.of(KilnCommand.class));
            HotCommands.HOT.forEach(name -> classes.add(Commands.command(name).getClass()));
            HotCommands.HOT_IMAGE.forEach(name -> classes.add(Commands.imageCommand(name).getClass()));
            OptionIndex.write(classes, Path.of(args[1]));
            return;
        }
        Main.prepare(new String[] {"ps"}); // as every CLI process does first
        String index = System.getProperty(OptionIndex.PROPERTY);
        if (index != null && !(args.length > 1 && args[1].equals("all"))) {
            writeIndex(Path.of(index));
        }
        Path dir = Path.of(args[0]);
        Path run = dir.resolve("run");
        Process kilnd = startKilnd(dir.resolve("root"), run, dir.resolve("kilnd.log"));
        try {
            String host = "unix://" + run.resolve("kiln.sock");
            // The hot commands only (HotCommands): every class in the cache is loaded at each start, so classes of
            // other paths (picocli's model, Jackson) would cost the hot commands more than the cache saves them. The
            // image reference is invalid so that create fails in kilnd, not in a pull.
            String image = "Not-An-Image";
            List<String[]> runs = List.of(
                    new String[] {"--version"},
                    new String[] {"--host", host, "ps"},
                    new String[] {"--host", host, "ps", "-a"},
                    new String[] {"--host", host, "ps", "-aq"},
                    new String[] {"--host", host, "ps", "--format", "json"},
                    new String[] {"--host", host, "inspect", "nothing-here"},
                    new String[] {"--host", host, "create", "--name", "t", "-e", "A=1", image, "true"},
                    new String[] {"--host", host, "run", "--rm", "--network", "none", image, "true"},
                    new String[] {"--host", host, "run", "-d", "-p", "8080:80", image, "true"},
                    new String[] {"--host", host, "start", "nothing-here"},
                    new String[] {"--host", host, "exec", "-e", "A=1", "nothing-here", "true"},
                    new String[] {"--host", host, "logs", "nothing-here"},
                    new String[] {"--host", host, "stop", "nothing-here"},
                    new String[] {"--host", host, "kill", "nothing-here"},
                    new String[] {"--host", host, "rm", "-f", "nothing-here"},
                    // a registry that refuses at once (port 9): the pull fails in kilnd, not on the network
                    new String[] {"--host", host, "pull", "-q", "127.0.0.1:9/nothing-here:1"},
                    new String[] {"--host", host, "image", "mount", "nothing-here:1"},
                    new String[] {"--host", host, "image", "unmount", "nothing-here:1"});
            if (args.length > 1 && args[1].equals("all")) {
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
        } finally {
            kilnd.destroy();
            if (!kilnd.waitFor(20, TimeUnit.SECONDS)) {
                kilnd.destroyForcibly().waitFor();
            }
        }
    }

    /**
     * The hot commands' option index (bin/kiln passes its path): written by a JVM of its own, because parsing class
     * files loads ~150 classes of java.lang.classfile, which in this JVM would go into the cache and be loaded at every
     * start; the commands below then read the index, so what reading it needs is in the cache.
     */
    private static void writeIndex(Path index) throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                AotTraining.class.getName(), "--option-index", index.toString()).inheritIO();
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        if (pb.start().waitFor() != 0) {
            throw new IOException("could not write the option index " + index);
        }
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
