package dev.kiln.audit;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a host process holds, read from /proc as anyone can check it: ids, effective capabilities, no_new_privs,
 * seccomp mode and filter count ({@code /proc/PID/status}); which namespaces it shares with the host (its
 * {@code /proc/PID/ns/*} links against PID 1's, or against kilnd's own where PID 1's cannot be read, as in a
 * container); its root directory (the host's when it is the same inode); the virtualisation and network devices it
 * holds open or can see in its root; and the memory and pids limits of its cgroups.
 *
 * @param command   argv[0]'s file name (or the comm)
 * @param uid       real, effective, saved and filesystem uid
 * @param capEff    CapEff as /proc shows it (hex); {@code capabilities} its names
 * @param seccomp   0 none, 1 strict, 2 filter
 * @param namespacesComparedWith {@code pid 1} or {@code kilnd}
 * @param root      readlink of /proc/PID/root; {@code hostRoot}: whether it is the host's root directory
 * @param deviceFds devices among its open descriptors (/dev/kvm, /dev/net/tun, /dev/vhost-*)
 * @param devicesVisible of /dev/kvm and /dev/net/tun, those that exist in its own root
 * @param cgroupLimits {@code memory} and {@code pids} limits ("max": none), {@code ?} where unreadable
 */
public record Privileges(long pid, String command, List<Long> uid, List<Long> gid, String capEff,
                         List<String> capabilities, boolean allCapabilities, boolean noNewPrivs, int seccomp,
                         int seccompFilters, List<String> sharedNamespaces, List<String> ownNamespaces,
                         String namespacesComparedWith, String root, boolean hostRoot, List<String> deviceFds,
                         List<String> devicesVisible, Map<String, String> cgroupLimits) {

    static final List<String> NAMESPACES = List.of("mnt", "pid", "net", "ipc", "uts", "user", "cgroup", "time");
    private static final List<String> DEVICES = List.of("/dev/kvm", "/dev/net/tun");
    private static final Path CGROUP = Path.of("/sys/fs/cgroup");
    /** Capability names by bit (linux/capability.h), up to CAP_CHECKPOINT_RESTORE (40). */
    private static final List<String> CAP_NAMES = List.of("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH",
            "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
            "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
            "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
            "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
            "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
            "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
            "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE");

    /** Reads process {@code pid} now. */
    public static Privileges of(long pid) throws IOException {
        Path proc = Path.of("/proc", Long.toString(pid));
        Map<String, String> status = status(proc.resolve("status"));
        String capEff = status.getOrDefault("CapEff", "0");
        long caps = Long.parseUnsignedLong(capEff, 16);
        List<String> capNames = new ArrayList<>();
        for (int bit = 0; bit < 64; bit++) {
            if ((caps & (1L << bit)) != 0) {
                capNames.add(bit < CAP_NAMES.size() ? CAP_NAMES.get(bit) : "CAP_" + bit);
            }
        }

        Path reference = Path.of("/proc/1");
        String comparedWith = "pid 1";
        if (link(reference.resolve("ns/mnt")) == null) {
            reference = Path.of("/proc/self"); // PID 1 is not readable here (kilnd runs in a container)
            comparedWith = "kilnd";
        }
        List<String> shared = new ArrayList<>();
        List<String> own = new ArrayList<>();
        for (String ns : NAMESPACES) {
            String mine = link(proc.resolve("ns").resolve(ns));
            String host = link(reference.resolve("ns").resolve(ns));
            if (mine != null && host != null) {
                (mine.equals(host) ? shared : own).add(ns);
            }
        }

        String root = link(proc.resolve("root"));
        boolean hostRoot = sameFile(proc.resolve("root"), reference.resolve("root"));

        List<String> fds = new ArrayList<>();
        try (var entries = Files.list(proc.resolve("fd"))) {
            for (Path fd : entries.toList()) {
                String target = link(fd);
                if (target != null && (DEVICES.contains(target) || target.startsWith("/dev/vhost-"))
                        && !fds.contains(target)) {
                    fds.add(target);
                }
            }
        }
        List<String> visible = DEVICES.stream().filter(d -> Files.exists(proc.resolve("root").resolve(d.substring(1))))
                .toList();

        return new Privileges(pid, command(proc), ids(status.get("Uid")),
                ids(status.get("Gid")), capEff, capNames, caps != 0 && caps == fullCapabilitySet(), "1".equals(
                status.get("NoNewPrivs")), Integer.parseInt(status.getOrDefault("Seccomp", "0")),
                Integer.parseInt(status.getOrDefault("Seccomp_filters", "0")), shared, own, comparedWith, root,
                hostRoot, fds, visible, cgroupLimits(proc));
    }

    private static long fullCapabilitySet() {
        try {
            int last = Integer.parseInt(Files.readString(Path.of("/proc/sys/kernel/cap_last_cap")).strip());
            return last >= 63 ? -1L : (1L << (last + 1)) - 1;
        } catch (IOException | NumberFormatException e) {
            return -1L;
        }
    }

    /** The program's name as started (argv[0]'s file name: runsc-sandbox, qemu-system-x86_64), else its comm. */
    private static String command(Path proc) throws IOException {
        byte[] cmdline = Files.readAllBytes(proc.resolve("cmdline"));
        int end = 0;
        while (end < cmdline.length && cmdline[end] != 0) {
            end++;
        }
        String argv0 = new String(cmdline, 0, end, java.nio.charset.StandardCharsets.UTF_8);
        return argv0.isEmpty() ? Files.readString(proc.resolve("comm")).strip()
                : argv0.substring(argv0.lastIndexOf('/') + 1);
    }

    private static Map<String, String> status(Path file) throws IOException {
        Map<String, String> m = new LinkedHashMap<>();
        for (String line : Files.readAllLines(file)) {
            int colon = line.indexOf(':');
            if (colon > 0) {
                m.put(line.substring(0, colon), line.substring(colon + 1).strip());
            }
        }
        return m;
    }

    private static List<Long> ids(String line) {
        List<Long> out = new ArrayList<>();
        if (line != null) {
            for (String f : line.split("\\s+")) {
                out.add(Long.parseLong(f));
            }
        }
        return out;
    }

    private static String link(Path p) {
        try {
            return Files.readSymbolicLink(p).toString();
        } catch (IOException | UnsupportedOperationException e) {
            return null;
        }
    }

    private static boolean sameFile(Path a, Path b) {
        try {
            return Files.getAttribute(a, "unix:dev").equals(Files.getAttribute(b, "unix:dev"))
                    && Files.getAttribute(a, "unix:ino").equals(Files.getAttribute(b, "unix:ino"));
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** memory and pids limits: cgroup v2 (the {@code 0::} line) where it has the file, else the v1 controller. */
    private static Map<String, String> cgroupLimits(Path proc) throws IOException {
        Map<String, String> paths = new LinkedHashMap<>();
        for (String line : Files.readAllLines(proc.resolve("cgroup"))) {
            String[] f = line.split(":", 3);
            if (f.length == 3) {
                paths.put(f[1], f[2]);
            }
        }
        Map<String, String> limits = new LinkedHashMap<>();
        limits.put("memory", limit(paths, "memory", "memory.max", "memory.limit_in_bytes"));
        limits.put("pids", limit(paths, "pids", "pids.max", "pids.max"));
        return limits;
    }

    private static String limit(Map<String, String> paths, String controller, String v2File, String v1File) {
        List<Path> candidates = new ArrayList<>();
        if (paths.containsKey("")) {
            String rel = paths.get("").substring(1);
            candidates.add(CGROUP.resolve(rel).resolve(v2File));            // pure v2
            candidates.add(CGROUP.resolve("unified").resolve(rel).resolve(v2File)); // hybrid
        }
        for (var e : paths.entrySet()) {
            if (List.of(e.getKey().split(",")).contains(controller)) {
                candidates.add(CGROUP.resolve(e.getKey()).resolve(e.getValue().substring(1)).resolve(v1File));
            }
        }
        for (Path file : candidates) {
            try {
                String v = Files.readString(file).strip();
                // v1 says "no limit" with a huge page-aligned number
                return v.matches("\\d{19,}") && Long.parseUnsignedLong(v) >= (1L << 62) ? "max" : v;
            } catch (IOException | RuntimeException e) {
                // not this hierarchy
            }
        }
        return "?";
    }
}
