package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.LibcCall;
import dev.kiln.isolation.Mount;
import dev.kiln.isolation.SandboxSpec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * A VM's bind mounts and volumes as virtio-fs shares (docs/volumes.md): one {@code virtiofsd} per share, started by
 * kilnd before the VMM, serving the host directory on {@code run/fsN.sock}; QEMU (jailed, unprivileged) connects to
 * it as a vhost-user device and the guest mounts tag {@code kilnN} at the target. virtiofsd runs as root because it
 * must create files with the guest's owners, but in its own sandbox ({@code sandbox=namespace}: mount, pid and net
 * namespaces, pivot_root into the shared directory, its own seccomp filter, capabilities cut to the file ones, mknod
 * removed) and, before that, in a mount namespace of kiln's where the directory is re-bound nosuid,nodev (and ro for
 * {@code :ro}): nothing above the source is reachable, a device node planted in it cannot be opened, and a read-only
 * share is read-only on the host side, whatever the guest kernel does. That namespace is a slave of the host's: a
 * mount made later under a shared directory on the host (a pod's container root, {@link DirectoryVm#podRoot}) is
 * seen by the guest; nothing made in it goes back. virtiofsd ends when its VMM disconnects.
 */
final class VirtioFs {
    private static final KilnLog LOG = KilnLog.of(VirtioFs.class);
    static final Path DAEMON = Path.of("/usr/lib/qemu/virtiofsd");
    private static final Duration READY = Duration.ofSeconds(10);

    /** One shared directory: the bind's host source, its guest target and whether it is read-only. */
    record Share(int index, Path source, String target, boolean readOnly) {
    }

    private VirtioFs() {
    }

    static String socket(int i) {
        return dev.kiln.isolation.vm.jail.VmmJail.RUN + "/fs" + i + ".sock";
    }

    static String tag(int i) {
        return "kiln" + i;
    }

    /** The spec's bind mounts (host paths and volumes' directories), in order. */
    static List<Share> of(SandboxSpec spec) {
        List<Share> out = new ArrayList<>();
        for (Mount m : spec.extraMounts()) {
            if (m.type().equals("bind")) {
                out.add(new Share(out.size(), Path.of(m.source()), m.target(), m.options().contains("ro")));
            }
        }
        return out;
    }

    /** Starts a virtiofsd per share and waits for its socket, made connectable by the VMM's uid (null: root). */
    static void start(Path vmDir, List<Share> shares, Integer vmmUid) {
        spawn(vmDir, shares).ready(vmmUid);
    }

    /**
     * virtiofsd processes started, their sockets not yet waited for: their start (a mount namespace, two mounts,
     * virtiofsd's own sandbox) overlaps what the caller does meanwhile; {@link #ready} waits. A failure stops them.
     */
    static final class Starting {
        private final Path vmDir;
        private final List<Share> shares;
        private final List<Process> started;

        private Starting(Path vmDir, List<Share> shares, List<Process> started) {
            this.vmDir = vmDir;
            this.shares = shares;
            this.started = started;
        }

        /** Waits for every share's socket and makes it connectable by the VMM's uid (null: root). */
        void ready(Integer vmmUid) {
            try {
                for (int i = 0; i < shares.size(); i++) {
                    Share s = shares.get(i);
                    Process p = started.get(i);
                    Path sock = vmDir.resolve(socket(s.index())).toAbsolutePath();
                    long deadline = System.nanoTime() + READY.toNanos();
                    while (!Files.exists(sock)) {
                        if (!p.isAlive() || System.nanoTime() > deadline) {
                            String log = Files.readString(vmDir.resolve("fs" + s.index() + ".log")).strip();
                            throw new KilnException(KilnException.Kind.INTERNAL, "cannot share " + s.source()
                                    + " with the VM: virtiofsd " + (p.isAlive() ? "did not listen in "
                                    + READY.toSeconds() + " s" : "exited") + (log.isEmpty() ? "" : ": "
                                    + log.lines().reduce((a, b) -> b).orElse("")));
                        }
                        Thread.sleep(5);
                    }
                    if (vmmUid != null) {
                        Files.setAttribute(sock, "unix:uid", vmmUid);
                        Files.setAttribute(sock, "unix:gid", vmmUid);
                    }
                }
            } catch (IOException e) {
                abort();
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot share a directory with the VM: "
                        + e.getMessage(), e);
            } catch (InterruptedException e) {
                abort();
                Thread.currentThread().interrupt();
                throw new KilnException(KilnException.Kind.INTERNAL, "interrupted");
            } catch (RuntimeException e) {
                abort();
                throw e;
            }
        }

        /**
         * Kills what this start began, at whatever stage each process is: {@link #stop} kills only a process that has
         * become virtiofsd (a pid file may outlive its process), so one still in {@code setsid}, {@code unshare} or
         * its {@code sh} would be left to become a root virtiofsd that nothing tracks. These are this JVM's children
         * and each leads its own process group once {@code setsid} ran, so the group is killed (whatever its
         * {@code sh} or virtiofsd's sandbox forked) while the child is unreaped, and the child itself.
         */
        void abort() {
            for (Process p : started) {
                LibcCall.killGroup(p.pid());
                p.destroyForcibly();
                try {
                    p.waitFor(2, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                LibcCall.killGroup(p.pid()); // what it forked if setsid ran between the two kills
            }
            stop(vmDir);
        }
    }

    /** Starts a virtiofsd per share (all at once: a pod's VM has two shares); {@link Starting#ready} waits for them. */
    static Starting spawn(Path vmDir, List<Share> shares) {
        if (shares.isEmpty()) {
            return new Starting(vmDir, shares, List.of());
        }
        if (!Files.isExecutable(DAEMON)) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "the vm isolation shares directories with "
                    + "virtiofsd, which is not at " + DAEMON + " (install qemu-system-common)");
        }
        stop(vmDir);
        List<Process> started = new ArrayList<>();
        try {
            Files.createDirectories(vmDir.resolve(socket(0)).getParent());
            String lockName = lockName(vmDir);
            Files.deleteIfExists(vmDir.resolve(lockName));
            Files.createSymbolicLink(vmDir.resolve(lockName), Path.of(dev.kiln.isolation.vm.jail.VmmJail.RUN));
            for (Share s : shares) {
                Path sock = vmDir.resolve(socket(s.index())).toAbsolutePath();
                Files.deleteIfExists(sock);
                String flags = "nosuid,nodev" + (s.readOnly() ? ",ro" : "");
                List<String> cmd = new ArrayList<>(List.of("setsid", "unshare", "--mount", "--propagation", "slave", "--", "sh", "-c",
                        "mount --bind \"$1\" \"$1\" && mount -o remount,bind," + flags + " \"$1\" && shift && exec \"$@\"",
                        "virtiofs", s.source().toString(), DAEMON.toString(),
                        "--socket-path=" + lockName + "/fs" + s.index() + ".sock",
                        "-o", "source=" + s.source(), "-o", "cache=none", "-o", "sandbox=namespace",
                        "-o", "modcaps=-mknod", "-o", "no_posix_lock", "--rlimit-nofile=0"));
                // relative to the VM's directory: a bundle's path (containerd's, 64-hex ids) may exceed a socket
                // address's 108 bytes
                Process p = new ProcessBuilder(cmd).directory(vmDir.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File(
                                "/dev/null"))).redirectErrorStream(true)
                        .redirectOutput(vmDir.resolve("fs" + s.index() + ".log").toFile()).start();
                Files.writeString(vmDir.resolve("fs" + s.index() + ".pid"), Long.toString(p.pid()));
                started.add(p);
            }
            return new Starting(vmDir, shares, started);
        } catch (IOException e) {
            new Starting(vmDir, shares, started).abort();
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot share a directory with the VM: "
                    + e.getMessage(), e);
        }
    }

    /**
     * The name of a link to the VM's {@code run/} that virtiofsd is given its socket through. virtiofsd (QEMU 7.2's)
     * locks a pid file named after its socket path, /run/virtiofsd/PATH-with-dots.pid, and refuses to start while
     * another holds it ("Cannot lock pid file"); the path is relative (a bundle's absolute one may exceed a socket
     * address's 108 bytes), so {@code run/fs0.sock} was every VM's: a second VM with a share anywhere on the host (a
     * second kiln-vm pod, a kilnd VM with a volume) could not start while the first ran. Through this link, named
     * after the VM's directory, the name is the VM's own and the socket is still {@code run/fsN.sock} for QEMU.
     */
    static String lockName(Path vmDir) {
        return "fs-" + ShortHash.of(vmDir.toAbsolutePath().toString(), 8);
    }

    /** Where virtiofsd locks its pid file (QEMU's local state dir; /var/run is /run): removed by {@link #stop}. */
    static final Path LOCKS = Path.of("/run/virtiofsd");

    /**
     * Kills what is left of the VM's virtiofsd processes (normally gone with their VMM) and removes their pid files
     * from {@link #LOCKS} (virtiofsd leaves them: one per VM now that each has a name of its own).
     */
    static void stop(Path vmDir) {
        for (int i = 0; ; i++) {
            Path pidFile = vmDir.resolve("fs" + i + ".pid");
            if (!Files.exists(pidFile)) {
                return;
            }
            try {
                long pid = Long.parseLong(Files.readString(pidFile).strip());
                Optional<ProcessHandle> h = ProcessHandle.of(pid);
                if (h.isPresent() && h.get().info().command().map(c -> c.contains("virtiofsd")).orElse(false)) {
                    h.get().descendants().forEach(ProcessHandle::destroyForcibly);
                    h.get().destroyForcibly();
                }
                Files.deleteIfExists(pidFile);
                Files.deleteIfExists(LOCKS.resolve(lockName(vmDir) + ".fs" + i + ".sock.pid"));
            } catch (IOException | NumberFormatException e) {
                LOG.warn("cannot stop the virtiofsd of " + pidFile + ": " + e.getMessage());
                return;
            }
        }
    }
}
