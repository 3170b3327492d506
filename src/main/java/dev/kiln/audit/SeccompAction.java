package dev.kiln.audit;

/**
 * What a seccomp filter answers for one syscall: the 32-bit return value of its BPF program, an action in the high
 * 16 bits (linux/seccomp.h) and its data (an errno, a trace message) in the low 16. When several filters are
 * stacked, the kernel keeps the answer whose action, read as a signed number, is lowest ({@link #precedence}).
 */
public record SeccompAction(int value) {

    public static final int KILL_PROCESS = 0x80000000;
    public static final int KILL_THREAD = 0x00000000;
    public static final int TRAP = 0x00030000;
    public static final int ERRNO = 0x00050000;
    public static final int USER_NOTIF = 0x7fc00000;
    public static final int TRACE = 0x7ff00000;
    public static final int LOG = 0x7ffc0000;
    public static final int ALLOW = 0x7fff0000;

    private static final int ACTION_FULL = 0xffff0000;

    public static final SeccompAction ALLOWED = new SeccompAction(ALLOW);

    public static SeccompAction errno(int errno) {
        return new SeccompAction(ERRNO | (errno & 0xffff));
    }

    public int action() {
        return value & ACTION_FULL;
    }

    public int data() {
        return value & 0xffff;
    }

    /**
     * Whether the syscall runs. {@code LOG} runs it (after logging); {@code TRACE} and {@code USER_NOTIF} hand the
     * decision to another process, which kiln cannot see, so they count as not allowed by the filter itself.
     */
    public boolean allows() {
        return action() == ALLOW || action() == LOG;
    }

    /** The kernel's order (kernel/seccomp.c, ACTION_ONLY): lower wins when filters are stacked. */
    public int precedence() {
        return action(); // as a signed int: KILL_PROCESS (0x80000000) is the most negative
    }

    /** The more restrictive of two answers (the kernel's choice between two stacked filters). */
    public static SeccompAction stricter(SeccompAction a, SeccompAction b) {
        return b.precedence() < a.precedence() ? b : a;
    }

    @Override
    public String toString() {
        return switch (action()) {
            case KILL_PROCESS -> "KILL_PROCESS";
            case KILL_THREAD -> "KILL_THREAD";
            case TRAP -> "TRAP";
            case ERRNO -> "ERRNO(" + data() + ")";
            case USER_NOTIF -> "USER_NOTIF";
            case TRACE -> "TRACE(" + data() + ")";
            case LOG -> "LOG";
            case ALLOW -> "ALLOW";
            default -> String.format("0x%08x", value); // the kernel treats unknown actions as KILL_PROCESS
        };
    }
}
