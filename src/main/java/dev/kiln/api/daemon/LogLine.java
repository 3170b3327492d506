package dev.kiln.api.daemon;

import dev.kiln.KilnLog;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.format.DateTimeFormatter;
import java.time.ZoneOffset;
import java.util.logging.Formatter;
import java.util.logging.Level;
import java.util.logging.LogRecord;

/**
 * One event, one line: {@code 2026-12-06T22:55:01.123Z WARN  [sandbox 3f2a9c1b7d0e] message}, UTC with milliseconds,
 * as log shippers and {@code grep} want it (java.util.logging's default takes two lines per event). Line breaks and
 * other control characters in a message are escaped ({@code \n}), so no value quoted in a message (a name, a
 * runtime's error) can forge a line. A stack trace follows, indented, only when {@code stacks} (kilnd at debug level).
 */
final class LogLine extends Formatter {

    /** Always three digits of milliseconds (ISO_INSTANT drops a zero fraction, and the lines would not align). */
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'")
            .withZone(ZoneOffset.UTC);

    private final boolean stacks;

    LogLine(boolean stacks) {
        this.stacks = stacks;
    }

    @Override
    public String format(LogRecord r) {
        KilnLog.Sandbox sandbox = null;
        Throwable thrown = r.getThrown();
        boolean foreign = false; // parameters of a java.util.logging user other than KilnLog: format them as JUL does
        for (Object p : r.getParameters() == null ? new Object[0] : r.getParameters()) {
            if (p instanceof KilnLog.Sandbox s) {
                sandbox = s;
            } else if (p instanceof Throwable t && thrown == null) {
                thrown = t;
            } else {
                foreign = true;
            }
        }
        String message = foreign ? formatMessage(r) : r.getMessage();
        StringBuilder line = new StringBuilder(128);
        line.append(TIME.format(r.getInstant()));
        line.append(' ').append(String.format("%-5s", name(r.getLevel()))).append(' ');
        if (sandbox != null) {
            line.append("[sandbox ").append(escape(sandbox.shortId())).append("] ");
        }
        line.append(escape(message == null ? "" : message));
        if (thrown != null && message == null) {
            line.append(escape(String.valueOf(thrown)));
        }
        line.append('\n');
        if (thrown != null && stacks) {
            StringWriter trace = new StringWriter();
            thrown.printStackTrace(new PrintWriter(trace));
            trace.toString().lines().forEach(l -> line.append("    ").append(l).append('\n'));
        }
        return line.toString();
    }

    /** kiln's level names (those of {@code --log-level}), for java.util.logging's. */
    static String name(Level level) {
        int v = level.intValue();
        if (v >= Level.SEVERE.intValue()) {
            return "ERROR";
        }
        if (v >= Level.WARNING.intValue()) {
            return "WARN";
        }
        if (v >= Level.INFO.intValue()) {
            return "INFO";
        }
        return v >= Level.FINE.intValue() ? "DEBUG" : "TRACE";
    }

    static String escape(String s) {
        StringBuilder out = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            String rep = switch (c) {
                case '\n' -> "\\n";
                case '\r' -> "\\r";
                case '\t' -> "\\t";
                default -> Character.isISOControl(c) || c == '\u2028' || c == '\u2029'
                        ? String.format("\\u%04x", (int) c) : null;
            };
            if (rep != null && out == null) {
                out = new StringBuilder(s.length() + 16).append(s, 0, i);
            }
            if (out != null) {
                if (rep != null) {
                    out.append(rep);
                } else {
                    out.append(c);
                }
            }
        }
        return out == null ? s : out.toString();
    }
}
