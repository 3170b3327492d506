package dev.kiln.isolation.vm.jail;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnLog;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * What {@code kiln inspect} shows of a VM's jail: written to {@code vm/jail.json} at each start (so a re-adopted
 * sandbox shows the jail its VMM really has), read back for inspect.
 *
 * @param seccompSyscalls how many syscalls kiln's filter allows; 0 with the jail off or without kiln's filter
 * @param seccomp         what inspect says of the VMM's seccomp; null in a record of a kiln before Firecracker's jail
 * @param root            the jail's directory (its tmpfs exists only in the VMM's mount namespace)
 * @param network         whose network namespace the VMM runs in
 */
public record JailRecord(boolean on, int uid, int gid, int seccompSyscalls, String seccomp, String root,
                         String network) {

    static final String FILE = "jail.json";
    private static final KilnLog LOG = KilnLog.of(JailRecord.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * {@link #write}'s JSON code run once, nothing written: the mapper and this record's serializer, made on first use
     * (a spare containerd shim's warm-up, so a pod VM's Create does not build them: DirectoryVm.warm).
     */
    public static void warm() {
        try {
            JSON.writeValueAsBytes(new JailRecord(true, 0, 0, 0, "", "", ""));
        } catch (IOException e) {
            // write() meets it again and says so
        }
    }

    /** Records the jail of the VMM about to start in {@code vmDir}; null: it runs without one. */
    public static void write(Path vmDir, VmmJail jail) {
        JailRecord r = jail == null ? new JailRecord(false, 0, 0, 0, null, null, null)
                : new JailRecord(true, jail.uid(), jail.uid(), jail.allowed(), jail.seccomp(),
                jail.root().toString(),
                switch (jail.network()) {
                    case SANDBOX -> "the sandbox's";
                    case USER -> "the host's (QEMU's slirp, --network user)";
                    case NONE -> "an empty one of its own";
                    case TEMPLATE -> "one of its own with only its TAP (a snapshot template's)";
                });
        try {
            Files.write(vmDir.resolve(FILE), JSON.writeValueAsBytes(r));
        } catch (IOException e) {
            LOG.warn("cannot write " + vmDir.resolve(FILE) + " (inspect will not show the jail): " + e.getMessage());
        }
    }

    public static Optional<JailRecord> read(Path vmDir) {
        try {
            return Optional.of(JSON.readValue(vmDir.resolve(FILE).toFile(), JailRecord.class));
        } catch (IOException e) {
            return Optional.empty(); // never started, or started by a kiln without jails
        }
    }

    /** inspect's {@code HostConfig.VmmJail}. */
    public Map<String, Object> inspect() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("Enabled", on);
        if (on) {
            m.put("Uid", uid);
            m.put("Gid", gid);
            m.put("Seccomp", seccomp != null ? seccomp : seccompSyscalls + " syscalls");
            m.put("Root", root);
            m.put("Namespaces", "mount, pid, ipc, uts of its own; network: " + network);
        } else {
            m.put("Warning", "off: the VMM runs as root with every capability, in the host's mount and pid "
                    + "namespaces, with no filter of kiln's (only QEMU's own -sandbox); vmm-jail: false in kilnd's "
                    + "config, for debugging only");
        }
        return m;
    }
}
