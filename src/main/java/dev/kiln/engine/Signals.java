package dev.kiln.engine;

import dev.kiln.KilnException;

import java.util.Map;

/** Signal names as Docker accepts them ({@code TERM}, {@code SIGTERM}, {@code 15}) → numbers (x86-64 Linux). */
public final class Signals {
    private Signals() {
    }

    /** The signal that cannot be caught: the end of a stop's grace period, kill and rm -f. */
    public static final int SIGKILL = 9;
    /** Docker's default stop signal. */
    public static final int SIGTERM = 15;

    private static final Map<String, Integer> NUMBERS = Map.ofEntries(
            Map.entry("HUP", 1), Map.entry("INT", 2), Map.entry("QUIT", 3), Map.entry("ILL", 4), Map.entry("TRAP", 5),
            Map.entry("ABRT", 6), Map.entry("BUS", 7), Map.entry("FPE", 8), Map.entry("KILL", SIGKILL),
            Map.entry("USR1", 10), Map.entry("SEGV", 11), Map.entry("USR2", 12), Map.entry("PIPE", 13),
            Map.entry("ALRM", 14), Map.entry("TERM", SIGTERM), Map.entry("STKFLT", 16), Map.entry("CHLD", 17),
            Map.entry("CONT", 18), Map.entry("STOP", 19), Map.entry("TSTP", 20), Map.entry("TTIN", 21),
            Map.entry("TTOU", 22), Map.entry("URG", 23), Map.entry("XCPU", 24), Map.entry("XFSZ", 25),
            Map.entry("VTALRM", 26), Map.entry("PROF", 27), Map.entry("WINCH", 28), Map.entry("IO", 29),
            Map.entry("PWR", 30), Map.entry("SYS", 31));

    public static int number(String signal) {
        if (signal == null || signal.isBlank()) {
            return SIGTERM;
        }
        String s = signal.strip().toUpperCase();
        if (s.matches("\\d{1,2}")) {
            int n = Integer.parseInt(s);
            if (n >= 1 && n <= 64) {
                return n;
            }
        }
        if (s.startsWith("SIG")) {
            s = s.substring(3);
        }
        Integer n = NUMBERS.get(s);
        if (n == null) {
            throw KilnException.invalid("invalid signal \"" + signal + "\" (use a name like TERM or a number)");
        }
        return n;
    }
}
