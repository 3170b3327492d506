package dev.kiln.isolation.vm.jail;

import static org.assertj.core.api.Assertions.assertThat;

import dev.kiln.audit.BpfEvaluator;
import dev.kiln.audit.SeccompAction;
import dev.kiln.audit.SeccompFilter;
import dev.kiln.audit.SyscallSurface;
import dev.kiln.audit.SyscallSurface.Kind;
import dev.kiln.isolation.seccomp.SyscallTable;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The VMM's allowlist compiled to BPF, read back by the audit's evaluator (an independent reading of the same bytes
 * the relay installs): what it allows, what it checks, what it refuses softly, and that everything else kills.
 */
class BpfProgramTest {

    private static final SyscallTable TABLE = SyscallTable.x86_64();
    private static final SeccompAllowlist QEMU = SeccompAllowlist.qemu();

    private static SyscallSurface surface(Set<String> traits) {
        byte[] raw = BpfProgram.compile(QEMU.rulesFor(traits)).bytes();
        return new BpfEvaluator(TABLE).evaluate(List.of(SeccompFilter.parse(raw)));
    }

    @Test
    void qemusFilterAllowsExactlyItsListWithinTheGoal() {
        SyscallSurface s = surface(Set.of());
        List<String> listed = QEMU.rulesFor(Set.of()).stream().filter(r -> r.allows() && r.args() == null)
                .map(SeccompAllowlist.Rule::name).sorted().toList();
        assertThat(s.names(Kind.ALLOWED)).containsExactlyInAnyOrderElementsOf(listed);
        assertThat(s.names(Kind.ARGUMENT_CHECKED)).containsExactlyInAnyOrder("clone", "prctl", "socket");
        int allowed = s.count(Kind.ALLOWED) + s.count(Kind.ARGUMENT_CHECKED);
        assertThat(allowed).isEqualTo(QEMU.allowedCount(Set.of())).isLessThanOrEqualTo(70); // issue 13: ≤ gVisor's
        assertThat(s.count(Kind.DENIED)).isEqualTo(TABLE.size() - allowed);
        System.out.println("QEMU's allowlist: " + allowed + " syscalls allowed (" + s.count(Kind.ARGUMENT_CHECKED)
                + " with an argument check), " + QEMU.allowedCount(Set.of("user-network")) + " with --network user");
    }

    /** Calls the kernel makes on QEMU's behalf must pass too: a tracer's attach (kiln audit's strace) or any signal
     * landing in a sleep resumes it through restart_syscall; without it the audited QEMU was killed. */
    @Test
    void theKernelsOwnRestartsAndSignalReturnsPass() {
        assertThat(outcomes(Set.of(), nr("restart_syscall"))).containsExactly(SeccompAction.ALLOWED);
        assertThat(outcomes(Set.of(), nr("rt_sigreturn"))).containsExactly(SeccompAction.ALLOWED);
    }

    @Test
    void whatAHostileVmmWouldReachForKillsIt() {
        for (String name : List.of("mount", "ptrace", "unshare", "setns", "bpf", "kexec_load", "init_module",
                "process_vm_writev", "keyctl", "fork", "vfork", "open_by_handle_at", "userfaultfd", "perf_event_open")) {
            int nr = TABLE.number(name).orElseThrow();
            assertThat(outcomes(Set.of(), nr)).as(name).containsExactly(kill());
        }
    }

    @Test
    void probesAreRefusedSoftlyWithTheirErrno() {
        assertThat(outcomes(Set.of(), nr("io_uring_setup"))).containsExactly(SeccompAction.errno(38));
        assertThat(outcomes(Set.of(), nr("clone3"))).containsExactly(SeccompAction.errno(38));
        assertThat(outcomes(Set.of(), nr("readlink"))).containsExactly(SeccompAction.errno(2));
    }

    @Test
    void argumentChecksLetThroughOnlyTheirValues() {
        SeccompFilter f = filter(Set.of());
        // socket(AF_UNIX) only; AF_NETLINK, AF_INET, AF_PACKET are kills
        assertThat(run(f, "socket", 1)).isEqualTo(SeccompAction.ALLOWED);
        for (long domain : List.of(16L, 2L, 10L, 17L)) assertThat(run(f, "socket", domain)).isEqualTo(kill());
        // clone: threads (CLONE_THREAD | CLONE_VM | ...), never a fork
        assertThat(run(f, "clone", 0x3d0f00L)).isEqualTo(SeccompAction.ALLOWED);
        assertThat(run(f, "clone", 0x11L)).isEqualTo(kill()); // SIGCHLD: fork's flags
        assertThat(run(f, "prctl", 38)).isEqualTo(SeccompAction.ALLOWED); // PR_SET_NO_NEW_PRIVS
        assertThat(run(f, "prctl", 22)).isEqualTo(kill()); // PR_SET_SECCOMP: only through seccomp(2)
        // --network user: slirp's AF_INET and AF_INET6, still no netlink
        SeccompFilter user = filter(Set.of("user-network"));
        assertThat(run(user, "socket", 2)).isEqualTo(SeccompAction.ALLOWED);
        assertThat(run(user, "socket", 10)).isEqualTo(SeccompAction.ALLOWED);
        assertThat(run(user, "socket", 16)).isEqualTo(kill());
        assertThat(surface(Set.of()).verdict("connect").kind()).isEqualTo(Kind.DENIED);
        assertThat(surface(Set.of("user-network")).verdict("connect").kind()).isEqualTo(Kind.ALLOWED);
    }

    @Test
    void anotherAbiIsKilledWhateverItsNumber() {
        SeccompFilter f = filter(Set.of());
        int i386 = 0x40000003; // AUDIT_ARCH_I386
        assertThat(BpfEvaluator.outcomes(f, i386, 0)).containsExactly(kill()); // restart_syscall there, read here
        assertThat(BpfEvaluator.outcomes(f, BpfEvaluator.AUDIT_ARCH_X86_64, 0x40000000)).containsExactly(kill()); // x32 read
        assertThat(BpfEvaluator.outcomes(f, BpfEvaluator.AUDIT_ARCH_X86_64, 0)).containsExactly(SeccompAction.ALLOWED);
    }

    @Test
    void theRawFileIsTheInstructionsInKernelOrder() {
        BpfProgram p = BpfProgram.compile(QEMU.rulesFor(Set.of()));
        byte[] raw = p.bytes();
        assertThat(raw).hasSize(8 * p.length());
        assertThat(SeccompFilter.parse(raw).program()).hasSize(p.length());
        // first: load the arch (BPF_LD|BPF_W|BPF_ABS, offset 4); last two: kill-process, allow
        assertThat(p.instructions().getFirst()).isEqualTo(new BpfProgram.Insn(0x20, 0, 0, 4));
        assertThat(p.instructions().get(p.length() - 2).k()).isEqualTo(0x80000000L);
        assertThat(p.instructions().getLast().k()).isEqualTo(0x7fff0000L);
    }

    private static SeccompFilter filter(Set<String> traits) {
        return SeccompFilter.parse(BpfProgram.compile(QEMU.rulesFor(traits)).bytes());
    }

    private static Set<SeccompAction> outcomes(Set<String> traits, int nr) {
        return BpfEvaluator.outcomes(filter(traits), BpfEvaluator.AUDIT_ARCH_X86_64, nr);
    }

    /** The one answer for a call whose checked argument has this value (the evaluator follows every branch; the
     * program's only argument loads are of the checked argument, so a concrete value picks one branch). */
    private static SeccompAction run(SeccompFilter f, String name, long arg) {
        return new Concrete(f).run(nr(name), arg);
    }

    private static int nr(String name) {
        return TABLE.number(name).orElseThrow();
    }

    private static SeccompAction kill() {
        return new SeccompAction(SeccompAction.KILL_PROCESS);
    }

    /** A plain cBPF interpreter for the instructions BpfProgram emits, with every argument word set to arg. */
    private record Concrete(SeccompFilter f) {
        SeccompAction run(int nr, long arg) {
            long a = 0;
            List<SeccompFilter.Instruction> p = f.program();
            for (int pc = 0; pc < p.size(); pc++) {
                SeccompFilter.Instruction in = p.get(pc);
                long k = in.k() & 0xffffffffL;
                switch (in.code()) {
                    case 0x20 -> a = k == 0 ? nr : k == 4 ? BpfEvaluator.AUDIT_ARCH_X86_64 & 0xffffffffL
                            : (k - 16) % 8 == 0 ? arg & 0xffffffffL : 0;
                    case 0x54 -> a &= k;
                    case 0x15 -> pc += a == k ? in.jt() : in.jf();
                    case 0x45 -> pc += (a & k) != 0 ? in.jt() : in.jf();
                    case 0x06 -> { return new SeccompAction((int) k); }
                    default -> throw new AssertionError("unexpected instruction " + in);
                }
            }
            throw new AssertionError("fell off the program");
        }
    }
}
