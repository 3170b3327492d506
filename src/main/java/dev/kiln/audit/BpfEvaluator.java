package dev.kiln.audit;

import dev.kiln.audit.SeccompFilter.Instruction;
import dev.kiln.isolation.seccomp.SyscallTable;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

import static dev.kiln.audit.SeccompFilter.*;

/**
 * Runs seccomp's classic BPF programs over {@code struct seccomp_data} for every syscall number of a
 * {@link SyscallTable}, with {@code arch} = AUDIT_ARCH_X86_64, and says which syscalls they allow.
 *
 * <p>The syscall number and the architecture are known; the instruction pointer and the six arguments are not. So
 * the program is interpreted abstractly: a word loaded from an argument is "unknown", arithmetic on an unknown gives
 * an unknown, and a conditional jump on an unknown follows both branches (a {@code JEQ} taken learns the value).
 * Every return reached is a possible answer; a syscall whose answers both allow and deny is "allowed with argument
 * checks". Two checks on the same argument are not correlated, so an answer may be counted that no single argument
 * value gives; the programs libseccomp and gVisor generate test each argument once per rule, where this is exact.
 * Classic BPF jumps only forward, so every path ends; states already explored are remembered.
 *
 * <p>Stacked filters: the kernel runs every filter and keeps the most restrictive answer ({@link
 * SeccompAction#stricter}); the possible answers of the stack are those of every combination.
 */
public final class BpfEvaluator {

    /** AUDIT_ARCH_X86_64: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE. */
    public static final int AUDIT_ARCH_X86_64 = 0xC000003E;
    /** sizeof(struct seccomp_data): nr, arch, instruction_pointer, args[6]. */
    static final int DATA_BYTES = 64;
    private static final long UNKNOWN = Long.MIN_VALUE;
    private static final int MEMORY_WORDS = 16;

    private final SyscallTable table;

    public BpfEvaluator(SyscallTable table) {
        this.table = table;
    }

    /** The surface a stack of filters leaves (empty stack: everything allowed). */
    public SyscallSurface evaluate(List<SeccompFilter> stack) {
        List<SyscallSurface.Verdict> verdicts = new ArrayList<>();
        for (var e : table.all().entrySet()) {
            verdicts.add(SyscallSurface.Verdict.of(e.getKey(), e.getValue(), outcomes(stack, AUDIT_ARCH_X86_64,
                    e.getKey())));
        }
        return new SyscallSurface(verdicts);
    }

    /** Every answer the stack can give for syscall {@code nr} of {@code arch}. */
    public static Set<SeccompAction> outcomes(List<SeccompFilter> stack, int arch, int nr) {
        Set<SeccompAction> combined = Set.of(SeccompAction.ALLOWED);
        for (SeccompFilter f : stack) {
            Set<SeccompAction> mine = outcomes(f, arch, nr);
            Set<SeccompAction> next = new LinkedHashSet<>();
            for (SeccompAction a : combined) {
                for (SeccompAction b : mine) {
                    next.add(SeccompAction.stricter(a, b));
                }
            }
            combined = next;
        }
        return combined;
    }

    /** Every answer one filter can give for syscall {@code nr} of {@code arch}. */
    public static Set<SeccompAction> outcomes(SeccompFilter filter, int arch, int nr) {
        Run run = new Run(filter.program(), arch, nr);
        long[] memory = new long[MEMORY_WORDS]; // the kernel's checker refuses reads of unwritten memory
        Arrays.fill(memory, 0);
        run.from(0, 0, 0, memory);
        return run.outcomes;
    }

    /** One abstract run of a program for one syscall. */
    private static final class Run {
        private final List<Instruction> program;
        private final int arch;
        private final int nr;
        final Set<SeccompAction> outcomes = new LinkedHashSet<>();
        private final Set<State> explored = new HashSet<>();

        Run(List<Instruction> program, int arch, int nr) {
            this.program = program;
            this.arch = arch;
            this.nr = nr;
        }

        private record State(int pc, long a, long x, List<Long> memory) {
        }

        void from(int pc, long a, long x, long[] m) {
            while (true) {
                if (pc < 0 || pc >= program.size()) {
                    throw new IllegalArgumentException("BPF program runs off its end at " + pc);
                }
                Instruction i = program.get(pc);
                int code = i.code();
                long k = Integer.toUnsignedLong(i.k());
                switch (i.instructionClass()) {
                    case LD -> a = load(code, k, m, i);
                    case LDX -> x = load(code, k, m, i);
                    case ST -> m[index(k)] = a;
                    case STX -> m[index(k)] = x;
                    case ALU -> a = alu(code, a, (code & X) != 0 ? x : k);
                    case MISC -> {
                        if ((code & 0xf8) == TXA) {
                            a = x;
                        } else {
                            x = a;
                        }
                    }
                    case RET -> {
                        long r = (code & 0x18) == A ? a : k;
                        if (r == UNKNOWN) {
                            throw new IllegalArgumentException("BPF program returns an argument-derived value");
                        }
                        outcomes.add(new SeccompAction((int) r));
                        return;
                    }
                    case JMP -> {
                        int op = code & 0xf0;
                        if (op == JA) {
                            pc += 1 + i.k();
                            continue;
                        }
                        long operand = (code & X) != 0 ? x : k;
                        Boolean taken = test(op, a, operand);
                        if (taken != null) {
                            pc += 1 + (taken ? i.jt() : i.jf());
                            continue;
                        }
                        // the answer depends on what the caller passes: follow both ways
                        long learned = op == JEQ && operand != UNKNOWN ? operand : a;
                        int yes = pc + 1 + i.jt();
                        int no = pc + 1 + i.jf();
                        if (explored.add(new State(yes, learned, x, boxed(m)))) {
                            from(yes, learned, x, m.clone());
                        }
                        if (!explored.add(new State(no, a, x, boxed(m)))) {
                            return;
                        }
                        pc = no;
                        continue;
                    }
                    default -> throw new IllegalArgumentException("not a BPF instruction: " + i);
                }
                pc++;
            }
        }

        private long load(int code, long k, long[] m, Instruction i) {
            int mode = code & 0xe0;
            int size = code & 0x18;
            return switch (mode) {
                case IMM -> k;
                case MEM -> m[index(k)];
                case LEN -> DATA_BYTES;
                case ABS -> {
                    if (size != W || k % 4 != 0 || k >= DATA_BYTES) {
                        throw new IllegalArgumentException("seccomp loads aligned words of seccomp_data only: " + i);
                    }
                    yield k == 0 ? Integer.toUnsignedLong(nr) : k == 4 ? Integer.toUnsignedLong(arch) : UNKNOWN;
                }
                default -> throw new IllegalArgumentException("not a seccomp load: " + i);
            };
        }

        private static int index(long k) {
            if (k >= MEMORY_WORDS) {
                throw new IllegalArgumentException("BPF scratch memory has 16 words, not " + (k + 1));
            }
            return (int) k;
        }

        private static long alu(int code, long a, long operand) {
            int op = code & 0xf0;
            if (op == NEG) {
                return a == UNKNOWN ? UNKNOWN : (-a) & 0xffffffffL;
            }
            if (a == UNKNOWN || operand == UNKNOWN) {
                return UNKNOWN;
            }
            long r = switch (op) {
                case ADD -> a + operand;
                case SUB -> a - operand;
                case MUL -> a * operand;
                case DIV -> operand == 0 ? 0 : a / operand;
                case MOD -> operand == 0 ? 0 : a % operand;
                case OR -> a | operand;
                case AND -> a & operand;
                case XOR -> a ^ operand;
                case LSH -> operand >= 32 ? 0 : a << operand;
                case RSH -> operand >= 32 ? 0 : a >>> operand;
                default -> throw new IllegalArgumentException("not a BPF ALU operation: " + op);
            };
            return r & 0xffffffffL;
        }

        /** Whether the jump is taken; null when it depends on an unknown value. */
        private static Boolean test(int op, long a, long operand) {
            if (a == UNKNOWN || operand == UNKNOWN) {
                return null;
            }
            return switch (op) {
                case JEQ -> a == operand;
                case JGT -> a > operand;
                case JGE -> a >= operand;
                case JSET -> (a & operand) != 0;
                default -> throw new IllegalArgumentException("not a BPF jump: " + op);
            };
        }

        private static List<Long> boxed(long[] m) {
            List<Long> out = new ArrayList<>(m.length);
            for (long v : m) {
                out.add(v);
            }
            return out;
        }
    }
}
