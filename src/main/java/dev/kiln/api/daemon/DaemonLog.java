package dev.kiln.api.daemon;

import dev.kiln.KilnException;

import java.util.List;
import java.util.Locale;
import java.util.logging.ConsoleHandler;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Sets up kilnd's log once, at {@code kiln daemon}'s start: {@link dev.kiln.KilnLog}'s lines (the JDK's
 * {@code System.Logger}, backed by java.util.logging) go to stderr as {@link LogLine}s at the level of
 * {@code --log-level} (or config.yaml's {@code log-level}); Jetty, which logs through its own slf4j binding, follows
 * it through {@code org.eclipse.jetty.LEVEL}.
 */
final class DaemonLog {

    /** The levels of {@code --log-level}. */
    static final List<String> LEVELS = List.of("debug", "info", "warn", "error");

    /** Held: java.util.logging keeps loggers weakly, and a collected one would forget the level set on it. */
    private static Logger kiln;

    private DaemonLog() {
    }

    /** {@code name} checked, as one of {@link #LEVELS} ({@code warning} too, as System.Logger spells it). */
    static String level(String name, String where) {
        String n = name.toLowerCase(Locale.ROOT);
        if (n.equals("warning")) {
            return "warn";
        }
        if (!LEVELS.contains(n)) {
            throw KilnException.invalid("unknown log level \"" + name + "\"" + where + " (use "
                    + String.join(", ", LEVELS) + ")");
        }
        return n;
    }

    static void configure(String level) {
        Level jul = switch (level) {
            case "debug" -> Level.FINE;
            case "warn" -> Level.WARNING;
            case "error" -> Level.SEVERE;
            default -> Level.INFO;
        };
        Logger root = Logger.getLogger("");
        for (Handler h : root.getHandlers()) {
            root.removeHandler(h);
        }
        Handler stderr = new ConsoleHandler(); // stderr, flushed after every line
        stderr.setLevel(Level.ALL);
        stderr.setFormatter(new LogLine(level.equals("debug")));
        root.addHandler(stderr);
        // debug is kiln's own: the JDK's libraries stay at info, or their debug chatter would bury kilnd's lines
        root.setLevel(jul.intValue() < Level.INFO.intValue() ? Level.INFO : jul);
        kiln = Logger.getLogger("dev.kiln");
        kiln.setLevel(jul);
        // Jetty's INFO is its start banner and its DEBUG thousands of lines a request: one step quieter than kilnd's,
        // so the default (info) logs Jetty's warnings only, as before --log-level existed. A -D setting wins.
        if (System.getProperty("org.eclipse.jetty.LEVEL") == null) {
            System.setProperty("org.eclipse.jetty.LEVEL", switch (level) {
                case "debug" -> "INFO";
                case "error" -> "ERROR";
                default -> "WARN";
            });
        }
    }
}
