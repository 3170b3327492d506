package dev.kiln.isolation.oci;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.isolation.Mount;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.Resources;
import dev.kiln.isolation.EtcFiles;
import dev.kiln.isolation.RunSettings;
import dev.kiln.isolation.SandboxSpec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Builds the OCI runtime-spec {@code config.json} for a sandbox, mirroring what Docker gives a non-privileged
 * container: the same 14 capabilities, mounts, masked and read-only paths, device rules and (equivalent) seccomp
 * profile. The same document serves {@code runc} and {@code runsc}; docs/runtime-spec.md lists every choice and where
 * it differs from Docker.
 */
public final class RuntimeSpec {

    public static final String OCI_VERSION = "1.0.2";

    /** Docker's default capability set (moby oci/caps/defaults.go), in bounding, effective and permitted. */
    public static final List<String> DEFAULT_CAPABILITIES = List.of("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID",
            "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
            "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE");

    /** Docker's masked paths: bind-mounted over with /dev/null (files) or an empty read-only tmpfs (directories). */
    public static final List<String> MASKED_PATHS = List.of("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
            "/sys/firmware", "/sys/devices/virtual/powercap");

    /** Docker's read-only paths under /proc. */
    public static final List<String> READONLY_PATHS =
            List.of("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger");

    /** RLIMIT_NOFILE Docker containers usually get; lowered to the caller's hard limit where that is smaller. */
    static final long NOFILE_TARGET = 1_048_576;
    /** CFS period Docker uses for {@code --cpus}. */
    static final long CPU_PERIOD_US = 100_000;
    /**
     * Under runsc the host cgroup holds the whole sandbox: Sentry and gofer threads plus, on the ptrace platform,
     * a stub process with several threads per guest process (measured here: 37 host tasks for one guest process,
     * 217 for 21). A guest {@code --pids-limit N} therefore becomes a host limit of BASE + PER_PROCESS * N: still a
     * fork-bomb bound, but approximate. See docs/runtime-spec.md.
     */
    static final long GVISOR_PIDS_BASE = 64;
    static final long GVISOR_PIDS_PER_PROCESS = 16;

    private RuntimeSpec() {
    }

    /**
     * The config.json document for {@code spec}, whose root filesystem is at {@code rootfs} (a path relative to the
     * bundle, usually {@code rootfs}, or absolute). The hosts/hostname/resolv.conf files are expected in
     * {@code spec.dir()} (see {@link Bundle}).
     */
    public static ObjectNode build(SandboxSpec spec, String rootfs, OciRuntime runtime) {
        return build(spec, rootfs, runtime, Host.current(), SeccompProfile.kilnDefault());
    }

    /**
     * The cgroup the runtime puts a sandbox in: relative, so it nests under kiln's own cgroup (cgroupfs driver), and
     * below {@code kiln/<id>}, which kiln owns (see {@link SandboxCgroup}).
     */
    public static String cgroupsPath(String sandboxId) {
        return SandboxCgroup.runtimePath(sandboxId);
    }

    /** The hostname a sandbox gets: the one asked for, else the first 12 characters of its id (as Docker does). */
    public static String hostname(SandboxSpec spec) {
        if (spec.hostname() != null && !spec.hostname().isBlank()) {
            return spec.hostname();
        }
        return spec.id().length() > 12 ? spec.id().substring(0, 12) : spec.id();
    }

    static ObjectNode build(SandboxSpec spec, String rootfs, OciRuntime runtime, Host host, SeccompProfile seccomp) {
        JsonNodeFactory json = JsonNodeFactory.instance;
        ObjectNode config = json.objectNode();
        config.put("ociVersion", OCI_VERSION);
        RunSettings settings = spec.settings();
        ObjectNode processNode = process(spec.process(), settings, host);
        if (settings.init()) {
            // Docker's --init: its init binary bound at /sbin/docker-init runs the command as its child
            ArrayNode args = processNode.putArray("args");
            args.add(TinyInit.TARGET).add("--");
            spec.process().args().forEach(args::add);
        }
        config.set("process", processNode);
        ObjectNode root = config.putObject("root");
        root.put("path", rootfs);
        root.put("readonly", spec.readOnly());
        if (!"host".equals(settings.utsMode())) {
            config.put("hostname", hostname(spec)); // --uts host: the host's (a runtime may not set it there)
        }
        config.set("mounts", mounts(spec));
        config.set("linux", linux(spec, runtime, host, seccomp));
        return config;
    }

    /** The OCI process object alone, for {@code runc exec --process}: the same user, caps and rlimits rules. */
    public static ObjectNode process(ProcessSpec process) {
        return process(process, RunSettings.NONE, Host.current());
    }

    /** The OCI process object of an exec in a sandbox created with {@code settings} (its caps, rlimits). */
    public static ObjectNode process(ProcessSpec process, RunSettings settings) {
        return process(process, settings, Host.current());
    }

    private static ObjectNode process(ProcessSpec process, RunSettings settings, Host host) {
        ObjectNode node = JsonNodeFactory.instance.objectNode();
        node.put("terminal", process.tty());
        ObjectNode user = node.putObject("user");
        user.put("uid", process.uid());
        user.put("gid", process.gid());
        if (!process.additionalGids().isEmpty()) {
            ArrayNode gids = user.putArray("additionalGids");
            process.additionalGids().forEach(gids::add);
        }
        strings(node.putArray("args"), process.args());
        strings(node.putArray("env"), process.env());
        node.put("cwd", process.cwd());
        ObjectNode caps = node.putObject("capabilities");
        List<String> granted = capabilities(settings);
        for (String set : List.of("bounding", "effective", "permitted")) {
            strings(caps.putArray(set), granted);
        }
        ArrayNode rlimits = node.putArray("rlimits");
        if (settings.ulimits().stream().noneMatch(u -> u.name().equals("nofile"))) {
            long nofile = Math.min(NOFILE_TARGET, host.nofileHardLimit());
            rlimits.addObject().put("type", "RLIMIT_NOFILE").put("hard", nofile).put("soft", nofile);
        }
        for (RunSettings.Ulimit u : settings.ulimits()) {
            rlimits.addObject().put("type", u.rlimit()).put("hard", u.hard()).put("soft", u.soft());
        }
        node.put("noNewPrivileges", settings.noNewPrivileges());
        return node;
    }

    /**
     * The capability set of a sandbox's processes: Docker's rule (moby oci/caps TweakCapabilities): {@code --cap-add
     * ALL} is every capability (here: every one kilnd holds, since a runtime cannot grant more) minus the dropped;
     * {@code --cap-drop ALL} keeps only the added; otherwise Docker's 14 plus the added minus the dropped.
     */
    static List<String> capabilities(RunSettings settings) {
        java.util.LinkedHashSet<String> caps = new java.util.LinkedHashSet<>();
        if (settings.capAdd().contains("ALL")) {
            caps.addAll(dev.kiln.isolation.Capabilities.held());
            settings.capDrop().forEach(caps::remove);
        } else if (settings.capDrop().contains("ALL")) {
            caps.addAll(settings.capAdd());
        } else {
            caps.addAll(DEFAULT_CAPABILITIES);
            settings.capDrop().forEach(caps::remove);
            caps.addAll(settings.capAdd());
        }
        return List.copyOf(caps);
    }

    /** Docker's default mounts (minus those a caller's mount replaces), then the caller's and the /etc files. */
    private static ArrayNode mounts(SandboxSpec spec) {
        List<Mount> extra = new ArrayList<>(spec.extraMounts());
        Set<String> taken = extra.stream().map(Mount::target).collect(Collectors.toSet());
        List<String> etcOptions = spec.readOnly() ? List.of("rbind", "rprivate", "ro") : List.of("rbind", "rprivate");
        if (spec.settings().init()) {
            extra.add(new Mount("bind", TinyInit.locate().toString(), TinyInit.TARGET,
                    List.of("rbind", "rprivate", "ro", "nosuid", "nodev")));
        }
        for (String file : EtcFiles.NAMES) {
            String target = "/etc/" + file;
            if (!taken.contains(target)) {
                extra.add(new Mount("bind", spec.dir().resolve(file).toString(), target, etcOptions));
            }
        }
        // Parents before children, as Docker sorts its mounts; the sort is stable for equal depths.
        extra.sort(Comparator.comparingInt(m -> Path.of(m.target()).normalize().getNameCount()));

        boolean devReplaced = taken.contains("/dev");
        ArrayNode out = JsonNodeFactory.instance.arrayNode();
        for (Mount m : defaultMounts(spec.settings().shmSize())) {
            if (!taken.contains(m.target()) && !(devReplaced && m.target().startsWith("/dev/"))) {
                mount(out, m);
            }
        }
        extra.forEach(m -> mount(out, m));
        return out;
    }

    static List<Mount> defaultMounts() {
        return defaultMounts(0);
    }

    /** Docker's default mounts, /dev/shm of {@code shmSize} bytes ({@code --shm-size}; 0: Docker's 64 MiB). */
    static List<Mount> defaultMounts(long shmSize) {
        String shm = shmSize > 0 ? "size=" + shmSize : "size=65536k";
        return List.of(
                new Mount("proc", "proc", "/proc", List.of("nosuid", "noexec", "nodev")),
                new Mount("tmpfs", "tmpfs", "/dev", List.of("nosuid", "strictatime", "mode=755", "size=65536k")),
                new Mount("devpts", "devpts", "/dev/pts",
                        List.of("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")),
                new Mount("sysfs", "sysfs", "/sys", List.of("nosuid", "noexec", "nodev", "ro")),
                new Mount("cgroup", "cgroup", "/sys/fs/cgroup", List.of("ro", "nosuid", "noexec", "nodev")),
                new Mount("mqueue", "mqueue", "/dev/mqueue", List.of("nosuid", "noexec", "nodev")),
                new Mount("tmpfs", "shm", "/dev/shm", List.of("nosuid", "noexec", "nodev", "mode=1777", shm)));
    }

    private static void mount(ArrayNode out, Mount m) {
        ObjectNode node = out.addObject();
        node.put("destination", m.target());
        node.put("type", m.type());
        node.put("source", m.source());
        strings(node.putArray("options"), m.options());
    }

    private static ObjectNode linux(SandboxSpec spec, OciRuntime runtime, Host host, SeccompProfile seccomp) {
        ObjectNode linux = JsonNodeFactory.instance.objectNode();
        ArrayNode namespaces = linux.putArray("namespaces");
        RunSettings settings = spec.settings();
        List<String> types = new ArrayList<>(List.of("pid", "ipc", "uts", "mount"));
        if ("host".equals(settings.pidMode())) {
            types.remove("pid"); // --pid host
        }
        if ("host".equals(settings.utsMode())) {
            types.remove("uts"); // --uts host
        }
        if (spec.network().mode() != dev.kiln.isolation.SandboxNetwork.Mode.HOST) {
            types.add("network"); // --network host: the host's namespace, as docker run --network host
        }
        boolean cgroupns = settings.cgroupnsMode() == null ? host.unifiedCgroups()
                : settings.cgroupnsMode().equals("private");
        if (cgroupns) {
            types.add("cgroup"); // Docker's default on cgroup v2; on v1 it shares the host's cgroup namespace
        }
        for (String t : types) {
            ObjectNode ns = namespaces.addObject().put("type", t);
            if (t.equals("network") && spec.netns() != null) {
                ns.put("path", spec.netns().toString()); // kiln's namespace on the kiln network: join it
            }
        }
        linux.put("cgroupsPath", cgroupsPath(spec.id()));
        ObjectNode resources = resources(spec.resources(), runtime);
        SettingsSpec.apply(settings, spec.resources(), linux, resources);
        linux.set("resources", resources);
        strings(linux.putArray("maskedPaths"), MASKED_PATHS);
        strings(linux.putArray("readonlyPaths"), READONLY_PATHS);
        // runsc ignores linux.seccomp unless started with --oci-seccomp (its own Sentry filter protects the host);
        // the object is kept so that flag works and the bundle stays one document for both runtimes.
        if (settings.seccomp() == null) {
            linux.set("seccomp", seccomp.toOci(host.arch(), capabilities(settings)));
        } else if (!settings.seccomp().equals("unconfined")) {
            linux.set("seccomp", DockerSeccomp.toOci(settings.seccomp(), host.arch(), capabilities(settings)));
        }
        return linux;
    }

    private static ObjectNode resources(Resources limits, OciRuntime runtime) {
        ObjectNode node = JsonNodeFactory.instance.objectNode();
        ArrayNode devices = node.putArray("devices");
        device(devices, false, null, null, null, "rwm");
        device(devices, true, "c", null, null, "m"); // mknod of any node; opening it is what the rules below decide
        device(devices, true, "b", null, null, "m");
        device(devices, true, "c", 1L, 3L, "rwm");   // /dev/null
        device(devices, true, "c", 1L, 5L, "rwm");   // /dev/zero
        device(devices, true, "c", 1L, 7L, "rwm");   // /dev/full
        device(devices, true, "c", 1L, 8L, "rwm");   // /dev/random
        device(devices, true, "c", 1L, 9L, "rwm");   // /dev/urandom
        device(devices, true, "c", 5L, 0L, "rwm");   // /dev/tty
        device(devices, true, "c", 5L, 2L, "rwm");   // /dev/ptmx
        device(devices, true, "c", 136L, null, "rwm"); // /dev/pts/*
        device(devices, true, "c", 10L, 200L, "rwm"); // /dev/net/tun (not created; TUNSETIFF needs CAP_NET_ADMIN)
        if (limits.memoryBytes() > 0) {
            node.putObject("memory").put("limit", limits.memoryBytes());
        }
        if (limits.nanoCpus() > 0) {
            long quota = limits.nanoCpus() * CPU_PERIOD_US / 1_000_000_000L;
            if (quota < 1000) {
                throw KilnException.invalid("--cpus must be at least 0.01 (the kernel's smallest CFS quota is 1 ms)");
            }
            ObjectNode cpu = node.putObject("cpu");
            cpu.put("quota", quota);
            cpu.put("period", CPU_PERIOD_US);
        }
        if (limits.pidsLimit() > 0) {
            node.putObject("pids").put("limit", runtime == OciRuntime.RUNSC
                    ? GVISOR_PIDS_BASE + GVISOR_PIDS_PER_PROCESS * limits.pidsLimit() : limits.pidsLimit());
        }
        return node;
    }

    private static void device(ArrayNode out, boolean allow, String type, Long major, Long minor, String access) {
        ObjectNode node = out.addObject();
        node.put("allow", allow);
        if (type != null) {
            node.put("type", type);
        }
        if (major != null) {
            node.put("major", major);
        }
        if (minor != null) {
            node.put("minor", minor);
        }
        node.put("access", access);
    }

    private static void strings(ArrayNode array, List<String> values) {
        values.forEach(array::add);
    }
}
