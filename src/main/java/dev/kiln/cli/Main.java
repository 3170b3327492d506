package dev.kiln.cli;

import dev.kiln.KilnException;
import picocli.CommandLine;

import java.io.InputStream;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.io.UncheckedIOException;
import java.util.Arrays;

/**
 * Entry point of the {@code kiln} command. Errors become one line on stderr and Docker's exit code 125; the stack
 * trace only with {@code --debug}.
 */
public final class Main {

    /** Docker's code for "the tool itself failed" (bad flags, missing image, registry errors). */
    static final int EXIT_KILN_FAILED = 125;

    private Main() {
    }

    public static void main(String[] args) {
        prepare(args);
        int code = run(args, new Stdio(System.in, System.out, System.err));
        if (hotPath) {
            // System.exit first asks System.getLogger whether to log the exit, and finding the logger backend makes
            // a ServiceLoader open and check every jar of the class path (the jar's Class-Path: 19 of them): a third
            // of a `kiln --version` (issue 17). The hot commands register no shutdown hooks (their terminal is
            // restored in a finally), so they end with halt once their output is out.
            System.out.flush();
            System.err.flush();
            Runtime.getRuntime().halt(code);
        }
        System.exit(code);
    }

    /** What a CLI process does before it runs the command line (also the AOT training's, so it is in the cache). */
    static void prepare(String[] args) {
        // The first socket asks a ServiceLoader for a SelectorProvider, which opens and checks every jar of the class
        // path (the jar's Class-Path: 19 of them) when none names one: as much as the rest of a `kiln ps` on a loaded
        // host (issue 17). Naming the JDK's own Linux provider skips the search; the provider is the same.
        if (System.getProperty(SELECTOR_PROVIDER) == null && "Linux".equals(System.getProperty("os.name"))) {
            System.setProperty(SELECTOR_PROVIDER, "sun.nio.ch.EPollSelectorProvider");
        }
        if (!(args.length == 1 && (args[0].equals("--version") || args[0].equals("-V")))) {
            Thread warm = new Thread(new SocketWarmer(), "kiln-warm-socket");
            warm.setDaemon(true);
            warm.start();
        }
    }

    /**
     * Makes a unix socket and closes it, while the main thread parses the command line: the JDK's first unix socket
     * initialises a SecureRandom (the security providers, ~1,000 lines of OIDs), net.properties and the socket options,
     * as much as the rest of a {@code kiln ps} (issue 17). The main thread's socket then finds them ready.
     */
    private static final class SocketWarmer implements Runnable {  // a class, not a lambda: none is spun at start
        @Override
        public void run() {
            try {
                java.nio.channels.SocketChannel.open(java.net.StandardProtocolFamily.UNIX).close();
            } catch (java.io.IOException | RuntimeException e) {
                // the command's own socket will say what is wrong
            }
        }
    }

    private static final String SELECTOR_PROVIDER = "java.nio.channels.spi.SelectorProvider";

    /** Whether the command line was run by {@link HotCommands}, whose end needs no shutdown hooks. */
    private static boolean hotPath;

    /** The streams a command reads and writes: the process's, or a test's. */
    record Stdio(InputStream in, OutputStream out, OutputStream err) {
    }

    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        return run(args, out, err, new Stdio(System.in, System.out, System.err));
    }

    static int run(String[] args, Stdio stdio) {
        PrintWriter out = new PrintWriter(new OutputStreamWriter(stdio.out(), StandardCharsets.UTF_8), true);
        PrintWriter err = new PrintWriter(new OutputStreamWriter(stdio.err(), StandardCharsets.UTF_8), true);
        return run(args, out, err, stdio);
    }

    private static int run(String[] args, PrintWriter out, PrintWriter err, Stdio stdio) {
        boolean debug = Arrays.asList(args).contains("--debug");
        Integer hot = HotCommands.run(args, out, err, stdio, debug);
        if (hot != null) {
            hotPath = true;
            out.flush();
            err.flush();
            return hot;
        }
        KilnCommand kiln = new KilnCommand();
        kiln.stdio = stdio;
        CommandLine cli = new CommandLine(kiln);
        Commands.register(cli, args);
        cli.setOut(out).setErr(err);
        cli.setParameterExceptionHandler((e, a) -> {
            CommandLine where = e.getCommandLine();
            if (where == cli && e instanceof CommandLine.UnmatchedArgumentException u && !u.getUnmatched().isEmpty()
                    && !u.getUnmatched().getFirst().startsWith("-")) {
                err.println("kiln: '" + u.getUnmatched().getFirst() + "' is not a kiln command (see 'kiln --help')");
            } else {
                err.println("kiln: " + firstLine(e.getMessage()) + " (see '" + where.getCommandSpec().qualifiedName()
                        + " --help')");
            }
            return EXIT_KILN_FAILED;
        });
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> failed(e, debug, err));
        int code = cli.execute(args);
        out.flush();
        err.flush();
        return code;
    }

    /** A command's failure: one line on stderr (the stack trace too with --debug); returns the exit code. */
    static int failed(Exception e, boolean debug, PrintWriter err) {
        if (debug) {
            e.printStackTrace(err);
        }
        err.println("kiln: " + describe(e));
        err.flush();
        return e instanceof KilnException k && k.exitCode() != null ? k.exitCode() : EXIT_KILN_FAILED;
    }

    private static String describe(Throwable e) {
        if (e instanceof KilnException) {
            return firstLine(e.getMessage());
        }
        if (e instanceof UncheckedIOException u) {
            e = u.getCause();
        }
        String what = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return firstLine(what) + " (run with --debug for details)";
    }

    private static String firstLine(String s) {
        return s == null ? "unknown error" : s.lines().findFirst().orElse(s).strip();
    }
}
