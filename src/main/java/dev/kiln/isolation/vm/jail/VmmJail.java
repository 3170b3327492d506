package dev.kiln.isolation.vm.jail;

import dev.kiln.KilnException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The jail of one sandbox's VMM (docs/vm.md, "The VMM's jail"), as the relay's options: kiln-shim clones the VMM into
 * its own mount, pid, ipc and uts namespaces, mounts a tmpfs on {@code vm/jail} holding only {@link #mounts} (bound
 * at the same paths they have on the host), pivots into it, runs it as the sandbox's own uid and gid with no
 * capabilities and no_new_privs, and installs the seccomp filter compiled from {@link SeccompAllowlist} last.
 *
 * <p>What is in it: the VMM's binary, its loader and libraries (from {@code ldd}), QEMU's TCG module and firmware,
 * the kernel and initramfs (read-only), {@code vm/run} for its sockets (its own uid's, the only writable place),
 * /dev/null, /dev/urandom, /dev/kvm with KVM, and with {@code --network user} the host's /etc/resolv.conf (slirp's
 * DNS forwards to it). The disks are not in it: the relay opens them and hands QEMU descriptors, so the shared image
 * disk stays 0600 root's and the VMM can never reopen it writable. Neither is /dev/net/tun: the relay opens the TAP.
 * That is QEMU's jail ({@link #forQemu}); Firecracker's ({@link #forFirecracker}) differs where its API opens by
 * path: both disks and /dev/net/tun are bound in, and kiln installs no filter (it installs its own).
 *
 * @param allowed how many syscalls kiln's filter lets through; 0 where the VMM installs its own (Firecracker)
 * @param seccomp what inspect says of the VMM's seccomp ("60 syscalls", "Firecracker's own filters")
 * @param network whose network namespace the VMM runs in
 */
public record VmmJail(int uid, Path root, List<Mount> mounts, int allowed, String seccomp, Network network,
                      List<String> relayOptions) {

    /**
     * Where the VMM's network namespace comes from: the sandbox's (its TAP, on a bridge), the host's (QEMU's slirp
     * makes host sockets: {@code --network user}), or an empty one of its own ({@code --network none}).
     */
    public enum Network {
        SANDBOX, USER, NONE,
        /** A namespace of its own in which the relay makes a TAP for the VMM ({@code --jail-tap}): the card of a
         * Firecracker snapshot template, which opens its TAP by name and has no sandbox (docs/vm.md). */
        TEMPLATE
    }

    /** The sockets' directory under {@code vm/}: the VMM's only writable place. */
    public static final String RUN = "run";
    static final String ROOT = "jail";
    static final String MOUNTS_FILE = "jail.mounts";
    static final String FILTER_FILE = "seccomp.bpf";
    /** Tests only: syscalls (comma-separated) left out of the filter, to see a VMM killed by it. */
    public static final String OMIT_PROPERTY = "kiln.vmm.seccomp.omit";
        /** The trait of a VMM with QEMU's user-mode network (its filter lets slirp's sockets through). */
    public static final String USER_NETWORK = "user-network";
    /** The trait of a VMM serving virtio-fs shares: it connects to virtiofsd (vhost-user) and shares a memfd. */
    public static final String SHARED_DIRS = "shared-dirs";
    /** The trait of a VMM that saves or restores a snapshot's state through a descriptor. */
    public static final String SNAPSHOT = "snapshot";

    /** One path bound into the jail: {@code ro}, {@code exec} (read-only, executable), {@code rw} or {@code dev}. */
    public record Mount(String kind, Path path) {}

    /**
     * Prepares the jail of a QEMU about to start in {@code vmDir}: the mount list and the filter written there,
     * {@code vm/run} made the VMM's.
     *
     * @param binary    the VMM's absolute path (its argv[0]: QEMU finds its module and firmware beside it)
     * @param bootFiles the kernel and initramfs it reads; made readable to the VMM when they are kiln's own
     *                  caches (under {@code ownCaches}), refused with one line otherwise
     */
    public static VmmJail forQemu(Path vmDir, int uid, Path binary, List<Path> bootFiles, Path ownCaches, boolean kvm,
                                  Network network) {
        return forQemu(vmDir, uid, binary, bootFiles, ownCaches, kvm, network, false, false);
    }

    /**
     * As above; {@code snapshot}: a VM of a snapshot, its template (QEMU writes its state to a descriptor) or one
     * restored from it (QEMU reads it from one): the allowlist's {@value #SNAPSHOT} entries (docs/vm.md);
     * {@code sharedDirs}: the VMM connects to virtiofsd's sockets in {@code run/} (trait {@value #SHARED_DIRS}).
     */
    public static VmmJail forQemu(Path vmDir, int uid, Path binary, List<Path> bootFiles, Path ownCaches, boolean kvm,
                                  Network network, boolean snapshot, boolean sharedDirs) {
        boolean userNetwork = network == Network.USER;
        Set<String> traits = new java.util.HashSet<>();
        if (userNetwork) traits.add(USER_NETWORK);
        if (snapshot) traits.add(SNAPSHOT);
        if (sharedDirs) traits.add(SHARED_DIRS);
        List<Mount> mounts = new ArrayList<>();
        Path real = realPath(binary);
        Path libs = real.getParent().resolve("../lib/x86_64-linux-gnu").normalize();
        Path module = libs.resolve("qemu/accel-tcg-x86_64.so");
        Set<Path> exec = new LinkedHashSet<>(List.of(real));
        exec.addAll(Libraries.of(real));
        if (!kvm && Files.exists(module)) { // Debian builds TCG as a module QEMU loads at start
            exec.add(module);
            exec.addAll(Libraries.of(module));
        }
        exec.forEach(p -> mounts.add(new Mount("exec", p)));
        Path firmware = real.getParent().resolve("../share/qemu/bios-microvm.bin").normalize();
        if (Files.exists(firmware)) mounts.add(new Mount("ro", firmware));
        for (Path f : bootFiles) mounts.add(new Mount("ro", readable(f.toAbsolutePath(), ownCaches)));
        if (userNetwork && Files.exists(Path.of("/etc/resolv.conf"))) {
            mounts.add(new Mount("ro", Path.of("/etc/resolv.conf")));
        }
        Path run = vmDir.resolve(RUN).toAbsolutePath();
        mounts.add(new Mount("rw", run));
        mounts.add(new Mount("dev", Path.of("/dev/null")));
        mounts.add(new Mount("dev", Path.of("/dev/urandom")));
        if (kvm) mounts.add(new Mount("dev", Path.of("/dev/kvm")));

        QemuFilter f = qemuFilter(traits);
        return prepare(vmDir, uid, mounts, f.program(), f.allowed(), f.allowed() + " syscalls", network);
    }

    /** QEMU's compiled seccomp filter for a set of traits, and how many syscalls it allows. */
    private record QemuFilter(BpfProgram program, int allowed) {
    }

    /**
     * Compiled once per JVM and set of traits (and omitted syscalls): the allowlist is a resource of the jar, the
     * same for every VM. The containerd shim compiles it in a spare's warm-up ({@link #warmQemuFilter}), off the
     * pod's path, where reading its JSON and compiling it in a cold JVM took 0.3-1 s at load 10.
     */
    private static final Map<String, QemuFilter> QEMU_FILTERS = new ConcurrentHashMap<>();

    private static QemuFilter qemuFilter(Set<String> traits) {
        // a test's knob (VmJailTest): these syscalls left out, so a real QEMU dies of a real seccomp kill
        String omitted = System.getProperty(OMIT_PROPERTY, "");
        return QEMU_FILTERS.computeIfAbsent(new java.util.TreeSet<>(traits) + "-" + omitted, k -> {
            Set<String> omit = Set.of(omitted.split(","));
            List<SeccompAllowlist.Rule> rules = SeccompAllowlist.qemu().rulesFor(traits).stream()
                    .filter(r -> !omit.contains(r.name())).toList();
            return new QemuFilter(BpfProgram.compile(rules),
                    (int) rules.stream().filter(SeccompAllowlist.Rule::allows).count());
        });
    }

    /**
     * QEMU's filter of a containerd pod's VM (shared directories; every VM has the snapshot trait) compiled now, and
     * the library answers in {@code store} loaded if it exists: a spare containerd shim's warm-up, with no side
     * effect (no ldd, nothing written).
     */
    public static void warmQemuFilter(Path store) {
        qemuFilter(Set.of(SNAPSHOT, SHARED_DIRS));
        if (Files.isRegularFile(store)) Libraries.load(store);
    }

    /**
     * Looks up ahead of {@link #forQemu} what a QEMU jail binds from the host that takes other processes to find:
     * the libraries of QEMU and of its TCG module, from {@code store} (a file of earlier answers, kept by whoever
     * owns it: the containerd shim's state root) or else with {@code ldd} (both at once), then written there. The
     * containerd shim is a JVM per pod, whose in-memory cache starts empty: without the store, every pod's start ran
     * ldd twice (a shell script and the loader: ~6 processes, 30-60 ms on a quiet node, up to a second on a loaded
     * one). An answer is used only for the same file, modification time and size. The seccomp filter is compiled
     * once meanwhile, which loads its classes. A failure is left for forQemu.
     */
    public static void warmQemu(Path binary, Path store) {
        try {
            Path real = realPath(binary);
            Path module = real.getParent().resolve("../lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so").normalize();
            int known = Libraries.load(store);
            java.util.concurrent.CompletableFuture<List<Path>> other = Files.exists(module)
                    ? java.util.concurrent.CompletableFuture.supplyAsync(() -> Libraries.of(module),
                            r -> Thread.ofPlatform().daemon().start(r))
                    : java.util.concurrent.CompletableFuture.completedFuture(List.of());
            Libraries.of(real);
            // the filter compiled (JSON, rules, BPF) beside ldd: forQemu's turn then finds it
            qemuFilter(Set.of(SNAPSHOT, SHARED_DIRS));
            other.join();
            if (Libraries.size() != known) Libraries.save(store);
        } catch (RuntimeException e) {
            // forQemu looks them up again and says what failed
        }
    }

    /**
     * Prepares the jail of a Firecracker about to start in {@code vmDir} (docs/vm.md, "Firecracker in the jail"):
     * the same namespaces, root, uid, capabilities, no_new_privs and cgroups as QEMU's, but <b>no filter of kiln's</b>:
     * Firecracker installs its own per-thread seccomp filters (its API, VMM and vCPU threads), which kiln cannot
     * measure on hosts where Firecracker cannot run, so any list of kiln's would be a guess. Firecracker opens what it
     * needs by path (its API has no descriptor passing), so its root also holds both disks (the image read-only, the
     * writable one read-write: made the VMM's), {@code /dev/net/tun} with a card (it opens its TAP by name) and
     * {@code /dev/kvm}.
     *
     * @param binary    Firecracker's absolute path (a static binary in its releases: then no libraries are bound)
     * @param imageDisk the shared image disk: bound read-only, made readable to others (only jails that bind it and
     *                  root can reach it: it is under kiln's root directories)
     */
    public static VmmJail forFirecracker(Path vmDir, int uid, Path binary, List<Path> bootFiles, Path ownCaches,
                                         Path imageDisk, Path writableDisk, Network network) {
        return forFirecracker(vmDir, uid, binary, bootFiles, ownCaches, imageDisk, writableDisk, network, List.of());
    }

    /**
     * The same, for a Firecracker that loads a snapshot: {@code snapshotFiles} (a checkpoint's state and memory,
     * root's) are bound read-only and made readable to the VMM's group alone (0640, group {@code uid}): guest memory
     * is the sandbox's secret, unlike the kernel.
     */
    public static VmmJail forFirecracker(Path vmDir, int uid, Path binary, List<Path> bootFiles, Path ownCaches,
                                         Path imageDisk, Path writableDisk, Network network,
                                         List<Path> snapshotFiles) {
        return forFirecracker(vmDir, uid, binary, bootFiles, ownCaches, imageDisk, writableDisk, network,
                snapshotFiles, false, List.of());
    }

    /**
     * The same; {@code shared}: the snapshot files are a {@code vm-snapshot}'s, loaded by every VM of its shape: they
     * must be root's, one link, written by no one but root (refused otherwise), and are bound read-only as they are
     * (no group of this VMM's: they are not this sandbox's alone). {@code placeholders}: the image's and the writable
     * drive's placeholder (docs/vm.md, "On Firecracker"), bound read-only and read-write (made this VMM's, 0600).
     */
    public static VmmJail forFirecracker(Path vmDir, int uid, Path binary, List<Path> bootFiles, Path ownCaches,
                                         Path imageDisk, Path writableDisk, Network network,
                                         List<Path> snapshotFiles, boolean shared, List<Path> placeholders) {
        if (network == Network.USER) throw new IllegalArgumentException("firecracker has no user-mode network");
        List<Mount> mounts = new ArrayList<>();
        Path real = realPath(binary);
        Set<Path> exec = new LinkedHashSet<>(List.of(real));
        exec.addAll(Libraries.of(real));
        exec.forEach(p -> mounts.add(new Mount("exec", p)));
        for (Path f : bootFiles) mounts.add(new Mount("ro", readable(f.toAbsolutePath(), ownCaches)));
        Path image = imageDisk.toAbsolutePath();
        Path disk = writableDisk.toAbsolutePath();
        try {
            // the image disk is shared by this image's sandboxes, read-only to each (the bind is ro): o+r lets the
            // VMM's uid open it; the writable disk is this sandbox's alone: its VMM's, 0600
            Set<PosixFilePermission> mode = Files.getPosixFilePermissions(image);
            if (mode.add(PosixFilePermission.OTHERS_READ)) Files.setPosixFilePermissions(image, mode);
            Files.setPosixFilePermissions(disk, PosixFilePermissions.fromString("rw-------"));
            Files.setAttribute(disk, "unix:uid", uid);
            Files.setAttribute(disk, "unix:gid", uid);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot jail the VMM: its disks: " + e.getMessage(), e);
        }
        mounts.add(new Mount("ro", image));
        mounts.add(new Mount("rw", disk));
        for (Path f : snapshotFiles) {
            Path file = f.toAbsolutePath();
            if (shared) {
                mounts.add(new Mount("ro", sharedFile(file)));
                continue;
            }
            try {
                Files.setAttribute(file, "unix:gid", uid, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r-----"));
            } catch (IOException e) {
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot jail the VMM: its snapshot: "
                        + e.getMessage(), e);
            }
            mounts.add(new Mount("ro", file));
        }
        if (!placeholders.isEmpty()) {
            Path rw = placeholders.get(1).toAbsolutePath();
            try {
                Files.setAttribute(rw, "unix:uid", uid, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                Files.setAttribute(rw, "unix:gid", uid, java.nio.file.LinkOption.NOFOLLOW_LINKS);
            } catch (IOException e) {
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot jail the VMM: its placeholder drive: "
                        + e.getMessage(), e);
            }
            mounts.add(new Mount("ro", placeholders.get(0).toAbsolutePath()));
            mounts.add(new Mount("rw", rw));
        }
        mounts.add(new Mount("rw", vmDir.resolve(RUN).toAbsolutePath()));
        mounts.add(new Mount("dev", Path.of("/dev/null")));
        mounts.add(new Mount("dev", Path.of("/dev/urandom")));
        mounts.add(new Mount("dev", Path.of("/dev/kvm"))); // Firecracker is KVM only
        // Firecracker opens its TAP by name (host_dev_name) through /dev/net/tun; QEMU is handed a descriptor instead
        if (network == Network.SANDBOX || network == Network.TEMPLATE) {
            mounts.add(new Mount("dev", Path.of("/dev/net/tun")));
        }
        return prepare(vmDir, uid, mounts, null, 0, FIRECRACKER_FILTERS, network);
    }

    /** A snapshot file every VMM of its shape reads: root's, one link, writable by root alone; else one line. */
    private static Path sharedFile(Path file) {
        try {
            var a = Files.readAttributes(file, java.nio.file.attribute.PosixFileAttributes.class,
                    java.nio.file.LinkOption.NOFOLLOW_LINKS);
            int owner = (Integer) Files.getAttribute(file, "unix:uid", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            int links = (Integer) Files.getAttribute(file, "unix:nlink", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            boolean othersWrite = a.permissions().contains(PosixFilePermission.GROUP_WRITE)
                    || a.permissions().contains(PosixFilePermission.OTHERS_WRITE);
            if (!a.isRegularFile() || owner != 0 || links != 1 || othersWrite) {
                throw KilnException.corrupt("the VM snapshot's " + file + " is not a regular file of one link, root's "
                        + "and written by root alone (remove its directory and kiln makes a new one)");
            }
            return file;
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot jail the VMM: its snapshot: "
                    + e.getMessage(), e);
        }
    }

    /** What inspect says of a Firecracker's seccomp: its own per-thread filters, none of kiln's. */
    public static final String FIRECRACKER_FILTERS = "Firecracker's own filters";

    /** Writes the mount list (and kiln's filter, when there is one) to {@code vmDir}, makes {@code vm/run} the VMM's. */
    private static VmmJail prepare(Path vmDir, int uid, List<Mount> mounts, BpfProgram filter, int allowed,
                                   String seccomp, Network network) {
        Path run = vmDir.resolve(RUN).toAbsolutePath();
        Path root = vmDir.resolve(ROOT).toAbsolutePath();
        try {
            Files.createDirectories(root);
            Files.createDirectories(run);
            Files.setPosixFilePermissions(run, PosixFilePermissions.fromString("rwx------"));
            Files.setAttribute(run, "unix:uid", uid);
            Files.setAttribute(run, "unix:gid", uid);
            StringBuilder list = new StringBuilder();
            for (Mount m : mounts) {
                String p = m.path().toString();
                if (p.contains("\t") || p.contains("\n")) {
                    throw KilnException.invalid("cannot jail the VMM: a path it needs holds a tab or a newline: " + p);
                }
                list.append(m.kind()).append('\t').append(p).append('\n');
            }
            Files.writeString(vmDir.resolve(MOUNTS_FILE), list);
            if (filter != null) Files.write(vmDir.resolve(FILTER_FILE), filter.bytes());
            else Files.deleteIfExists(vmDir.resolve(FILTER_FILE)); // a QEMU's, from a start before
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot prepare the VMM's jail in " + vmDir + ": "
                    + e.getMessage(), e);
        }
        List<String> options = new ArrayList<>(List.of("--jail", root.toString(), "--jail-uid", Integer.toString(uid),
                "--jail-gid", Integer.toString(uid), "--jail-mounts", vmDir.resolve(MOUNTS_FILE).toAbsolutePath()
                        .toString()));
        if (filter != null) options.addAll(List.of("--seccomp", vmDir.resolve(FILTER_FILE).toAbsolutePath().toString()));
        if (network == Network.NONE || network == Network.TEMPLATE) {
            options.add("--jail-new-netns"); // no card (or a template's, on a TAP of its own): not the host's network
        }
        return new VmmJail(uid, root, List.copyOf(mounts), allowed, seccomp, network, List.copyOf(options));
    }

    private static Path realPath(Path p) {
        try {
            return p.toRealPath();
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot jail the VMM: " + p + ": "
                    + e.getMessage(), e);
        }
    }

    /**
     * A boot file the VMM's uid can read through the bind mount (which bypasses the 0700 directories above it):
     * kiln's caches of the host's kernel and of kiln-init with modules are public content, made 0644; any other
     * file (a --kernel of the user's) must already be readable by others.
     */
    private static Path readable(Path file, Path ownCaches) {
        try {
            Set<PosixFilePermission> mode = Files.getPosixFilePermissions(file);
            if (mode.contains(PosixFilePermission.OTHERS_READ)) return file;
            if (file.normalize().startsWith(ownCaches.toAbsolutePath().normalize())) {
                Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
                return file;
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot jail the VMM: " + file + ": "
                    + e.getMessage(), e);
        }
        throw KilnException.invalid("cannot jail the VMM: it runs unprivileged and cannot read " + file
                + " (make it readable to others, chmod o+r, or use --security-opt jail=off)");
    }

    /** The shared libraries of an ELF file and its loader, as {@code ldd} resolves them on this host (cached). */
    static final class Libraries {
        private record Key(Path file, FileTime modified, long size) {}

        private static final Map<Key, List<Path>> CACHE = new ConcurrentHashMap<>();

        static int size() {
            return CACHE.size();
        }

        /**
         * Adds the answers in {@code store} (lines: file TAB modified-millis TAB size TAB libraries TAB-separated)
         * that still hold for their file; returns how many the cache then has.
         */
        static int load(Path store) {
            try {
                for (String line : Files.readAllLines(store)) {
                    String[] f = line.split("\t");
                    if (f.length < 3) continue;
                    Path file = Path.of(f[0]);
                    Key key = new Key(file, FileTime.fromMillis(Long.parseLong(f[1])), Long.parseLong(f[2]));
                    if (!key.equals(new Key(file, Files.getLastModifiedTime(file), Files.size(file)))) continue;
                    List<Path> libs = new ArrayList<>();
                    for (int i = 3; i < f.length; i++) libs.add(Path.of(f[i]));
                    CACHE.put(key, List.copyOf(libs));
                }
            } catch (IOException | RuntimeException e) {
                // none yet, or unreadable: ldd answers again
            }
            return CACHE.size();
        }

        /** Writes the cache to {@code store} (temp file, then rename). */
        static void save(Path store) {
            StringBuilder out = new StringBuilder();
            CACHE.forEach((k, libs) -> {
                out.append(k.file()).append('\t').append(k.modified().toMillis()).append('\t').append(k.size());
                libs.forEach(l -> out.append('\t').append(l));
                out.append('\n');
            });
            try {
                Path tmp = Files.createTempFile(store.getParent(), ".libraries-", ".tmp");
                Files.writeString(tmp, out);
                Files.move(tmp, store, java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            } catch (IOException e) {
                // ldd answers again next time
            }
        }

        static List<Path> of(Path elf) {
            try {
                Key key = new Key(elf, Files.getLastModifiedTime(elf), Files.size(elf));
                List<Path> known = CACHE.get(key);
                if (known != null) return known;
                List<Path> found = ldd(elf);
                CACHE.put(key, found);
                return found;
            } catch (IOException e) {
                throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot jail the VMM: the libraries of "
                        + elf + ": " + e.getMessage(), e);
            }
        }

        /** {@code ldd}'s lines (none for a static binary, as Firecracker's releases are): {@code libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)}, {@code /lib64/ld-linux…}. */
        static List<Path> parse(String out) {
            List<Path> found = new ArrayList<>();
            for (String line : out.lines().toList()) {
                for (String token : line.strip().split("\\s+")) {
                    if (token.startsWith("/") && !token.endsWith(":")) {
                        found.add(Path.of(token).normalize());
                        break;
                    }
                }
            }
            return List.copyOf(found);
        }

        private static List<Path> ldd(Path elf) throws IOException {
            Process p = new ProcessBuilder("ldd", elf.toString()).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            if (out.contains("not a dynamic executable") || out.contains("statically linked")) return List.of();
            try {
                if (!p.waitFor(Duration.ofSeconds(10).toMillis(), TimeUnit.MILLISECONDS) || p.exitValue() != 0) {
                    p.destroyForcibly();
                    throw new IOException("ldd failed: " + out.strip());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted");
            }
            return parse(out);
        }
    }
}
