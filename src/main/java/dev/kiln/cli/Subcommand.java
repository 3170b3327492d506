package dev.kiln.cli;

import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.concurrent.Callable;

/** What every kiln command shares: the global options (held by the root command) and the output streams. */
abstract class Subcommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @picocli.CommandLine.Option(names = "--help", usageHelp = true, description = "Show this help and exit")
    boolean help;

    /** Set instead of {@link #spec} when {@link HotCommands} parsed the command line (no picocli model). */
    KilnCommand parent;
    PrintWriter out;
    PrintWriter err;

    KilnCommand kiln() {
        return parent != null ? parent : (KilnCommand) spec.root().userObject();
    }

    PrintWriter out() {
        return out != null ? out : spec.commandLine().getOut();
    }

    PrintWriter err() {
        return err != null ? err : spec.commandLine().getErr();
    }

    Main.Stdio stdio() {
        return kiln().stdio;
    }

    @Override
    public final Integer call() throws Exception {
        return run(kiln().client());
    }

    abstract int run(DaemonClient daemon) throws Exception;

    /** A query string value, percent-encoded. */
    static String q(String value) {
        return java.net.URLEncoder.encode(value, java.nio.charset.StandardCharsets.UTF_8);
    }
}
