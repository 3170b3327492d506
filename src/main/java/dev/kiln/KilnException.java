package dev.kiln;

/**
 * The one error type kiln shows to people. Its message is a single line that says what failed and what to do next;
 * the {@link Kind} is mapped once to an exit code (CLI) and once to an HTTP status (API).
 */
public class KilnException extends RuntimeException {

    /** The few categories callers branch on; everything else is context in the message. */
    public enum Kind { NOT_FOUND, INVALID_ARGUMENT, CONFLICT, UNAVAILABLE, UNAUTHORIZED, CORRUPT, INTERNAL }

    private final Kind kind;
    private Integer exitCode;

    public KilnException(Kind kind, String message) {
        this(kind, message, null);
    }

    public KilnException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }

    /** The exit code the CLI should use when it is not 125: 126 (not executable) or 127 (not found), as Docker. */
    public Integer exitCode() {
        return exitCode;
    }

    /** A sandbox command that cannot run: Docker exits 126 when it is not executable, 127 when it is not found. */
    public static KilnException command(int exitCode, String message) {
        KilnException e = new KilnException(Kind.INVALID_ARGUMENT, message);
        e.exitCode = exitCode;
        return e;
    }

    public static KilnException notFound(String message) {
        return new KilnException(Kind.NOT_FOUND, message);
    }

    public static KilnException invalid(String message) {
        return new KilnException(Kind.INVALID_ARGUMENT, message);
    }

    public static KilnException conflict(String message) {
        return new KilnException(Kind.CONFLICT, message);
    }

    public static KilnException corrupt(String message) {
        return new KilnException(Kind.CORRUPT, message);
    }

    /** A value from outside (a client, an image) in double quotes for a message, escaped as {@link #escape}. */
    public static String quote(String value) {
        return value == null ? "null" : "\"" + escape(value).replace("\"", "\\\"") + "\"";
    }

    /** Control characters escaped ({@code \n}, {@code \x00}) and a long value cut: the message stays one line. */
    public static String escape(String value) {
        String cut = value.length() > 100 ? value.substring(0, 100) + "…" : value;
        StringBuilder out = new StringBuilder();
        cut.codePoints().forEach(c -> {
            if (c == '\\') {
                out.append("\\\\");
            } else if (Character.isISOControl(c)) {
                out.append(switch (c) {
                    case '\n' -> "\\n";
                    case '\r' -> "\\r";
                    case '\t' -> "\\t";
                    default -> String.format("\\x%02x", c);
                });
            } else {
                out.appendCodePoint(c);
            }
        });
        return out.toString();
    }
}
