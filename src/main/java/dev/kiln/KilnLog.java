package dev.kiln;

import java.lang.System.Logger.Level;

/**
 * kilnd's log, for every layer: the JDK's {@link System.Logger} (backed by java.util.logging; {@code kiln daemon}
 * sets its level and one-line format at start, {@code api.daemon.DaemonLog}). It lives here, beside
 * {@link KilnException}, so the engine, isolation and network layers can log without knowing the API.
 *
 * <p>A line about a sandbox names it: {@code LOG.sandbox(id).warn("…")} hands the id to the formatter as a
 * parameter of the record (not text of the message), so it prints as {@code [sandbox 3f2a9c1b7d0e]} in one place.
 */
public final class KilnLog {

    /** The sandbox a line concerns (a record parameter the formatter recognises). */
    public record Sandbox(String id) {
        /** Docker's short form: a sandbox id's first 12 characters. */
        public String shortId() {
            return id.length() > 12 ? id.substring(0, 12) : id;
        }
    }

    private final System.Logger logger;
    private final Sandbox sandbox;

    private KilnLog(System.Logger logger, Sandbox sandbox) {
        this.logger = logger;
        this.sandbox = sandbox;
    }

    public static KilnLog of(Class<?> owner) {
        return new KilnLog(System.getLogger(owner.getName()), null);
    }

    /** This log with every line tagged with sandbox {@code id}. */
    public KilnLog sandbox(String id) {
        return new KilnLog(logger, new Sandbox(id));
    }

    public void debug(String message) {
        log(Level.DEBUG, message, null);
    }

    public void debug(String message, Throwable cause) {
        log(Level.DEBUG, message, cause);
    }

    public void info(String message) {
        log(Level.INFO, message, null);
    }

    public void warn(String message) {
        log(Level.WARNING, message, null);
    }

    /** {@code cause}'s stack trace follows the line only when kilnd logs at debug level. */
    public void warn(String message, Throwable cause) {
        log(Level.WARNING, message, cause);
    }

    public void error(String message) {
        log(Level.ERROR, message, null);
    }

    /** {@code cause}'s stack trace follows the line only when kilnd logs at debug level. */
    public void error(String message, Throwable cause) {
        log(Level.ERROR, message, cause);
    }

    public boolean debugging() {
        return logger.isLoggable(Level.DEBUG);
    }

    /**
     * A line's cold path run once, written nowhere: the JDK's logger lookup and LogManager start, the record's
     * caller lookup, the formatter. For a process whose first line falls on a critical path: a spare containerd
     * shim's warm-up (its pod's VM Create logs QEMU's TCG notice first; 25-50 ms of a loaded node's pod start, and
     * the lookup alone ~0.1 s in a JVM whose AOT cache had not seen it). The real handlers are neither made nor used.
     */
    public static void warm() {
        String name = KilnLog.class.getName() + ".warm";
        java.util.logging.Logger quiet = java.util.logging.Logger.getLogger(name); // held: its handler stays set
        quiet.setUseParentHandlers(false);
        var nowhere = new java.util.logging.StreamHandler(java.io.OutputStream.nullOutputStream(),
                new java.util.logging.SimpleFormatter());
        quiet.addHandler(nowhere);
        try {
            System.getLogger(name).log(Level.INFO, "warm");
            nowhere.flush();
        } finally {
            quiet.removeHandler(nowhere);
        }
    }

    private void log(Level level, String message, Throwable cause) {
        if (sandbox == null) {
            if (cause == null) {
                logger.log(level, message);
            } else {
                logger.log(level, message, cause);
            }
        } else { // System.Logger has no call with both parameters and a throwable: the formatter finds either
            logger.log(level, message, cause == null ? new Object[] {sandbox} : new Object[] {sandbox, cause});
        }
    }
}
