package dev.kiln.isolation;

import dev.kiln.KilnException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Linux capability names, for {@code --cap-add}/{@code --cap-drop}: Docker accepts them with or without
 * {@code CAP_}, in any case, plus {@code ALL}.
 */
public final class Capabilities {
    private Capabilities() {
    }

    /** Every capability by its number (linux/capability.h, 0 to 40). */
    static final List<String> BY_NUMBER = List.of("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH",
            "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
            "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
            "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
            "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
            "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
            "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE");

    /** {@code net_admin}, {@code CAP_NET_ADMIN} or {@code all} as kiln keeps it ({@code CAP_NET_ADMIN}, {@code ALL}). */
    public static String normalize(String name, String flag) {
        String upper = name.strip().toUpperCase(Locale.ROOT);
        if (upper.equals("ALL")) {
            return upper;
        }
        String cap = upper.startsWith("CAP_") ? upper : "CAP_" + upper;
        if (!BY_NUMBER.contains(cap)) {
            throw KilnException.invalid("invalid " + flag + " \"" + name + "\": unknown capability (e.g. NET_ADMIN, "
                    + "SYS_PTRACE or ALL)");
        }
        return cap;
    }

    /**
     * The capabilities kilnd itself holds in its bounding set: all a runtime can give a sandbox ({@code --cap-add
     * ALL}); on these machines CAP_SYS_RESOURCE is not among them.
     */
    public static List<String> held() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("CapBnd:")) {
                    long mask = Long.parseUnsignedLong(line.substring(7).strip(), 16);
                    List<String> out = new ArrayList<>();
                    for (int i = 0; i < BY_NUMBER.size(); i++) {
                        if ((mask & (1L << i)) != 0) {
                            out.add(BY_NUMBER.get(i));
                        }
                    }
                    return out;
                }
            }
            throw new IllegalStateException("no CapBnd line in /proc/self/status");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read /proc/self/status", e);
        }
    }
}
