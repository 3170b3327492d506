package dev.kiln.audit;

import static dev.kiln.audit.SeccompFilter.*;
import static dev.kiln.audit.SeccompFilter.Instruction.jump;
import static dev.kiln.audit.SeccompFilter.Instruction.stmt;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.kiln.audit.SyscallSurface.Kind;
import dev.kiln.isolation.seccomp.SyscallTable;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The evaluator against filters whose answers are known by construction. */
class BpfEvaluatorTest {

    static final SyscallTable TABLE = SyscallTable.x86_64();
    static final BpfEvaluator EVALUATOR = new BpfEvaluator(TABLE);
    static final int READ = 0, WRITE = 1, EXIT = 60, SOCKET = 41, MOUNT = 165, PTRACE = 101, UNAME = 63;
    static final int AF_UNIX = 1;

    /** allow read, write and exit on x86-64; kill the process for anything else, or any other architecture. */
    static final SeccompFilter READ_WRITE_EXIT = SeccompFilter.of(
            stmt(LD | W | ABS, 4),                                   // arch
            jump(JMP | JEQ | K, BpfEvaluator.AUDIT_ARCH_X86_64, 1, 0),
            stmt(RET | K, SeccompAction.KILL_PROCESS),
            stmt(LD | W | ABS, 0),                                   // nr
            jump(JMP | JEQ | K, READ, 3, 0),
            jump(JMP | JEQ | K, WRITE, 2, 0),
            jump(JMP | JEQ | K, EXIT, 1, 0),
            stmt(RET | K, SeccompAction.KILL_PROCESS),
            stmt(RET | K, SeccompAction.ALLOW));

    /** as above, and socket(AF_UNIX, …) only: the low and high words of args[0] are checked, as libseccomp does. */
    static final SeccompFilter WITH_SOCKET_CHECK = SeccompFilter.of(
            stmt(LD | W | ABS, 0),
            jump(JMP | JEQ | K, READ, 9, 0),
            jump(JMP | JEQ | K, WRITE, 8, 0),
            jump(JMP | JEQ | K, EXIT, 7, 0),
            jump(JMP | JEQ | K, SOCKET, 1, 0),
            stmt(RET | K, SeccompAction.ERRNO | 1),                 // EPERM
            stmt(LD | W | ABS, 20),                                  // args[0] high word
            jump(JMP | JEQ | K, 0, 0, 2),
            stmt(LD | W | ABS, 16),                                  // args[0] low word
            jump(JMP | JEQ | K, AF_UNIX, 1, 0),
            stmt(RET | K, SeccompAction.ERRNO | 97),                // EAFNOSUPPORT
            stmt(RET | K, SeccompAction.ALLOW));

    /** everything but the listed syscalls, which get {@code answer}. */
    static SeccompFilter allowAllBut(int answer, int... denied) {
        List<Instruction> p = new java.util.ArrayList<>();
        p.add(stmt(LD | W | ABS, 0));
        for (int i = 0; i < denied.length; i++) {
            p.add(jump(JMP | JEQ | K, denied[i], denied.length - i, 0));
        }
        p.add(stmt(RET | K, SeccompAction.ALLOW));
        p.add(stmt(RET | K, answer));
        return new SeccompFilter(p);
    }

    @Test
    void noFilterAllowsTheWholeTable() {
        SyscallSurface s = EVALUATOR.evaluate(List.of());
        assertThat(s.count(Kind.ALLOWED)).isEqualTo(TABLE.size()).isEqualTo(362);
        assertThat(s).isEqualTo(SyscallSurface.unfiltered(TABLE));
    }

    @Test
    void handcraftedAllowlistAllowsExactlyItsThree() {
        SyscallSurface s = EVALUATOR.evaluate(List.of(READ_WRITE_EXIT));
        assertThat(s.names(Kind.ALLOWED)).containsExactly("read", "write", "exit");
        assertThat(s.count(Kind.ARGUMENT_CHECKED)).isZero();
        assertThat(s.count(Kind.DENIED)).isEqualTo(TABLE.size() - 3);
        assertThat(BpfEvaluator.outcomes(READ_WRITE_EXIT, BpfEvaluator.AUDIT_ARCH_X86_64, MOUNT))
                .containsExactly(new SeccompAction(SeccompAction.KILL_PROCESS));
        // the same syscall number from the i386 ABI takes the other path
        assertThat(BpfEvaluator.outcomes(READ_WRITE_EXIT, 0x40000003, READ))
                .containsExactly(new SeccompAction(SeccompAction.KILL_PROCESS));
    }

    @Test
    void anArgumentCheckMakesItsSyscallArgumentChecked() {
        SyscallSurface s = EVALUATOR.evaluate(List.of(WITH_SOCKET_CHECK));
        assertThat(s.names(Kind.ALLOWED)).containsExactly("read", "write", "exit");
        assertThat(s.names(Kind.ARGUMENT_CHECKED)).containsExactly("socket");
        assertThat(s.verdict("socket").outcomes()).containsExactlyInAnyOrder(SeccompAction.ALLOWED,
                SeccompAction.errno(97));
        assertThat(s.verdict("mount").outcomes()).containsExactly(SeccompAction.errno(1));
    }

    @Test
    void stackedFiltersKeepTheMostRestrictiveAnswer() {
        SeccompFilter errnoPtraceAndMount = allowAllBut(SeccompAction.ERRNO | 1, PTRACE, MOUNT);
        SeccompFilter killMount = allowAllBut(SeccompAction.KILL_PROCESS, MOUNT);
        SyscallSurface s = EVALUATOR.evaluate(List.of(killMount, errnoPtraceAndMount));
        assertThat(s.names(Kind.DENIED)).containsExactlyInAnyOrder("ptrace", "mount");
        assertThat(s.verdict("mount").outcomes()).containsExactly(new SeccompAction(SeccompAction.KILL_PROCESS));
        assertThat(s.verdict("ptrace").outcomes()).containsExactly(SeccompAction.errno(1));
        // an allowlist under an argument check: the stack is the intersection
        SyscallSurface both = EVALUATOR.evaluate(List.of(WITH_SOCKET_CHECK, allowAllBut(SeccompAction.ERRNO | 1,
                WRITE)));
        assertThat(both.names(Kind.ALLOWED)).containsExactly("read", "exit");
        assertThat(both.names(Kind.ARGUMENT_CHECKED)).containsExactly("socket");
        // the order of installation does not change the answer
        assertThat(EVALUATOR.evaluate(List.of(errnoPtraceAndMount, killMount))).isEqualTo(s);
    }

    @Test
    void strictModeIsItsFourSyscalls() {
        assertThat(EVALUATOR.evaluate(List.of(ProcessFilters.STRICT)).names(Kind.ALLOWED))
                .containsExactly("read", "write", "rt_sigreturn", "exit");
    }

    @Test
    void scratchMemoryAndAluFollowTheKnownValues() {
        // nr * 2 stored and reloaded: only uname (63 → 126) passes
        SeccompFilter f = SeccompFilter.of(
                stmt(LD | W | ABS, 0),
                stmt(ALU | MUL | K, 2),
                stmt(ST, 3),
                stmt(LDX | W | MEM, 3),
                stmt(MISC | TXA, 0),
                jump(JMP | JEQ | K, 2 * UNAME, 0, 1),
                stmt(RET | K, SeccompAction.ALLOW),
                stmt(RET | K, SeccompAction.KILL_THREAD));
        assertThat(EVALUATOR.evaluate(List.of(f)).names(Kind.ALLOWED)).containsExactly("uname");
    }

    @Test
    void bytesRoundTripAndBadProgramsAreRefused() {
        assertThat(SeccompFilter.parse(WITH_SOCKET_CHECK.bytes())).isEqualTo(WITH_SOCKET_CHECK);
        assertThatThrownBy(() -> BpfEvaluator.outcomes(SeccompFilter.of(stmt(LD | B | ABS, 0),
                stmt(RET | K, SeccompAction.ALLOW)), BpfEvaluator.AUDIT_ARCH_X86_64, 0))
                .hasMessageContaining("aligned words");
        assertThatThrownBy(() -> BpfEvaluator.outcomes(SeccompFilter.of(stmt(LD | W | ABS, 0)),
                BpfEvaluator.AUDIT_ARCH_X86_64, 0)).hasMessageContaining("runs off its end");
        assertThat(Set.of(SeccompAction.stricter(SeccompAction.ALLOWED, new SeccompAction(SeccompAction.LOG))))
                .containsExactly(new SeccompAction(SeccompAction.LOG));
    }
}
