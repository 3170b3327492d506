package dev.kiln.isolation.oci;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The facts about the machine that shape a runtime spec: the native architecture (for seccomp), the hard
 * RLIMIT_NOFILE kiln itself runs under (a spec may not raise it: runc would need CAP_SYS_RESOURCE), and whether
 * cgroups are unified (v2 only) or v1/hybrid.
 *
 * @param arch native architecture as kiln's seccomp profile names it: {@code x86_64} or {@code aarch64}
 */
record Host(String arch, long nofileHardLimit, boolean unifiedCgroups) {

    static Host current() {
        return new Host(nativeArch(System.getProperty("os.arch")), nofileHardLimit(Path.of("/proc/self/limits")),
                Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers")));
    }

    static String nativeArch(String javaArch) {
        return switch (javaArch) {
            case "amd64", "x86_64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> javaArch;
        };
    }

    /** The hard "Max open files" limit from a {@code /proc/PID/limits} file; {@link Long#MAX_VALUE} if unlimited. */
    static long nofileHardLimit(Path limitsFile) {
        try {
            for (String line : Files.readAllLines(limitsFile)) {
                if (line.startsWith("Max open files")) {
                    String[] fields = line.substring("Max open files".length()).trim().split("\\s+");
                    return fields[1].equals("unlimited") ? Long.MAX_VALUE : Long.parseLong(fields[1]);
                }
            }
            throw new IllegalStateException("no 'Max open files' line in " + limitsFile);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + limitsFile, e);
        }
    }
}
