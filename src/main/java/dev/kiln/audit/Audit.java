package dev.kiln.audit;

import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Sandbox;
import dev.kiln.engine.SandboxConfig;
import dev.kiln.engine.Sandboxes;
import dev.kiln.isolation.oci.RuntimeSpec;
import dev.kiln.isolation.oci.SeccompProfile;
import dev.kiln.isolation.seccomp.SyscallTable;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * {@code kiln audit}: runs a workload under each isolation and measures the wall in front of it. Per isolation: a
 * sandbox of the image with {@code --network none} is created and started as any other; once it runs, each of its
 * front processes ({@link Sandboxes#frontPids}) is read: privileges from /proc, seccomp filters of every thread
 * with ptrace, then the syscalls it makes until it ends or the window closes ({@code strace -f -c}). The sandbox is
 * removed whatever happened. Then the reference rows. One isolation at a time: the figures are per process, and
 * this host has two cores.
 */
public final class Audit {
    private static final KilnLog LOG = KilnLog.of(Audit.class);

    /** The isolations in the order a report lists them. */
    public static final List<String> ISOLATIONS = List.of("container", "gvisor", "vm");
    private static final Duration FRONT_TIMEOUT = Duration.ofSeconds(60);
    public static final Duration DEFAULT_WINDOW = Duration.ofSeconds(30);
    public static final Duration MAX_WINDOW = Duration.ofMinutes(10);

    private final Engine engine;
    private final Path work;
    private final SyscallTable table = SyscallTable.x86_64();
    private final BpfEvaluator evaluator = new BpfEvaluator(table);

    /** {@code work}: a directory for strace's temporary output (kilnd's run root). */
    public Audit(Engine engine, Path work) {
        this.engine = engine;
        this.work = work;
    }

    /**
     * Audits {@code image} running {@code cmd} (null: the image's command) under {@code isolation} ({@code all}:
     * every isolation whose runtime is installed here).
     */
    public AuditReport run(String image, List<String> cmd, String isolation, Duration window) {
        if (window.isNegative() || window.isZero() || window.compareTo(MAX_WINDOW) > 0) {
            throw KilnException.invalid("the audit window must be between 1 s and " + MAX_WINDOW.toMinutes()
                    + " min");
        }
        List<String> isolations;
        if (isolation == null || isolation.equals("all")) {
            isolations = ISOLATIONS.stream().filter(this::available).toList();
        } else if (ISOLATIONS.contains(isolation)) {
            isolations = List.of(isolation);
        } else {
            throw KilnException.invalid("unknown isolation \"" + isolation + "\" (container, gvisor, vm or all)");
        }
        engine.images().resolve(image); // a missing image is the caller's error, said once, not a row per isolation
        List<AuditReport.Row> rows = new ArrayList<>();
        for (String i : isolations) {
            rows.addAll(measure(image, cmd, i, window));
        }
        rows.addAll(references());
        return new AuditReport(image, cmd, System.getProperty("os.version"), table.size(), "x86-64, "
                + table.size() + " syscalls of the Linux 6.1 headers (linux-libc-dev)", window.toMillis() / 1000.0,
                rows);
    }

    /** An isolation kilnd has and that says it can run here (its runtime binary is installed). */
    private boolean available(String isolation) {
        return engine.isolators().find(isolation).map(i -> i.availability().available()).orElse(false);
    }

    private List<AuditReport.Row> measure(String image, List<String> cmd, String isolation, Duration window) {
        Sandboxes sandboxes = engine.sandboxes();
        String name = "kiln-audit-" + isolation + "-" + HexFormat.of().toHexDigits(ThreadLocalRandom.current()
                .nextInt());
        Sandbox s;
        try {
            s = sandboxes.create(new SandboxConfig(image, name, cmd, null, null, null, null, null, isolation, null,
                    0, 0, 0, false, Map.of("dev.kiln.audit", "1"), false, false, false, null, null, "none", false,
                    null, null, null, null, null, 0, null));
        } catch (KilnException e) {
            return List.of(AuditReport.Row.failed(isolation, e.getMessage())); // e.g. no kernel for the vm here
        }
        try {
            sandboxes.start(s.id(), false);
            List<Long> pids = awaitFront(sandboxes, s.id());
            String runtime = engine.runtimeOf(sandboxes.get(s.id()));
            List<Read> reads = new ArrayList<>();
            for (long pid : pids) {
                reads.add(new Read(pid, Privileges.of(pid), ProcessFilters.of(pid, evaluator, table)));
            }
            SyscallUsage usage = SyscallUsage.attach(pids, work).finish(window);
            List<AuditReport.Row> rows = new ArrayList<>();
            for (Read r : reads) {
                SyscallSurface surface = r.filters().surface();
                String command = r.privileges().command();
                rows.add(new AuditReport.Row(isolation, AuditReport.MEASURED, runtime.startsWith(command)
                        || command.startsWith(runtime) ? command : command + " (" + runtime + ")", r.pid(), surface.count(SyscallSurface.Kind.ALLOWED),
                        surface.count(SyscallSurface.Kind.ARGUMENT_CHECKED), surface.count(SyscallSurface.Kind.DENIED),
                        usage.distinct(), r.filters().description(), surface.names(SyscallSurface.Kind.ALLOWED),
                        surface.names(SyscallSurface.Kind.ARGUMENT_CHECKED), r.privileges(), usage,
                        front(isolation) + (usage.ended() ? "" : "; syscalls counted for the first "
                                + Math.round(usage.tracedSeconds()) + " s (the workload ran on)")
                                + (pids.size() > 1 ? "; used: all front processes together" : ""), null));
            }
            return rows;
        } catch (IOException e) {
            return List.of(AuditReport.Row.failed(isolation, ended(sandboxes, s.id())
                    ? "the workload ended before it could be read (give it a command that runs a moment, e.g. "
                    + "sh -c 'sleep 2')" : e.getMessage()));
        } catch (KilnException e) {
            return List.of(AuditReport.Row.failed(isolation, e.getMessage()));
        } finally {
            try {
                sandboxes.remove(s.id(), true);
            } catch (KilnException e) {
                LOG.sandbox(s.id()).warn("audit: cannot remove the sandbox " + s.name() + ": " + e.getMessage(), e);
            }
        }
    }

    private record Read(long pid, Privileges privileges, ProcessFilters filters) {
    }

    private static String front(String isolation) {
        return switch (isolation) {
            case "container" -> "the workload's own process, on the host kernel";
            case "gvisor" -> "runsc's Sentry, which serves the workload's syscalls";
            default -> "the VMM, which emulates the guest's devices";
        };
    }

    private static boolean ended(Sandboxes sandboxes, String id) {
        try {
            return !sandboxes.get(id).running();
        } catch (KilnException e) {
            return true;
        }
    }

    private static List<Long> awaitFront(Sandboxes sandboxes, String id) throws IOException {
        long deadline = System.nanoTime() + FRONT_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            if (!sandboxes.get(id).running()) {
                throw new IOException("the sandbox is not running");
            }
            List<Long> pids = sandboxes.frontPids(id);
            if (!pids.isEmpty()) {
                return pids;
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted");
            }
        }
        throw new IOException("no front process appeared within " + FRONT_TIMEOUT.toSeconds() + " s");
    }

    /** The reference rows: Docker's profile evaluated here, the other projects' own published figures. */
    List<AuditReport.Row> references() {
        SyscallSurface docker = dockerDefault();
        List<AuditReport.Row> rows = new ArrayList<>();
        rows.add(new AuditReport.Row("docker default", AuditReport.PUBLISHED, null, null,
                docker.count(SyscallSurface.Kind.ALLOWED), docker.count(SyscallSurface.Kind.ARGUMENT_CHECKED),
                docker.count(SyscallSurface.Kind.DENIED), null, null, docker.names(SyscallSurface.Kind.ALLOWED),
                docker.names(SyscallSurface.Kind.ARGUMENT_CHECKED), null, null,
                "Docker's default seccomp profile with Docker's default capabilities, evaluated over the table (kiln's "
                        + "container profile is equal to it: SeccompProfileTest)", null));
        rows.add(AuditReport.Row.published("gvisor sentry", 70,
                "gVisor's figure for the Sentry's host syscall allowlist (~70, varies by platform and version)"));
        rows.add(AuditReport.Row.published("firecracker vmm", 50, "Firecracker's per-thread seccomp filters "
                + "(x86_64): the VMM thread"));
        rows.add(AuditReport.Row.published("firecracker api", 31, "Firecracker's per-thread seccomp filters "
                + "(x86_64): the API thread"));
        rows.add(AuditReport.Row.published("firecracker vcpu", 27, "Firecracker's per-thread seccomp filters "
                + "(x86_64): each vCPU thread"));
        rows.add(AuditReport.Row.published("nabla", 7, "Nabla containers: a unikernel under a 7-syscall seccomp "
                + "policy (nabla-measurements)"));
        return rows;
    }

    /** Docker's default profile for x86-64 with Docker's 14 capabilities, as kiln's equal profile states it. */
    SyscallSurface dockerDefault() {
        Set<String> caps = Set.copyOf(RuntimeSpec.DEFAULT_CAPABILITIES);
        return JsonProfile.of(SeccompProfile.kilnDefault().toOci("x86_64", caps)).evaluate(table, "amd64", caps,
                System.getProperty("os.version"));
    }
}
