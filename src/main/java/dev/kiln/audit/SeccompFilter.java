package dev.kiln.audit;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * One classic BPF program as seccomp runs it ({@code struct sock_filter[]}), e.g. read back from a live process by
 * {@link FilterDump}. A process may carry several (each {@code seccomp(2)} call stacks one more); the kernel runs all
 * of them and the most restrictive answer wins ({@link BpfEvaluator}).
 */
public record SeccompFilter(List<Instruction> program) {

    /** Bytes of one {@code struct sock_filter}: u16 code, u8 jt, u8 jf, u32 k. */
    public static final int INSTRUCTION_BYTES = 8;
    /** The kernel's limit (BPF_MAXINSNS). */
    public static final int MAX_INSTRUCTIONS = 4096;

    // opcode parts, as in linux/bpf_common.h
    public static final int LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU = 0x04, JMP = 0x05, RET = 0x06,
            MISC = 0x07;
    public static final int W = 0x00, H = 0x08, B = 0x10;
    public static final int IMM = 0x00, ABS = 0x20, IND = 0x40, MEM = 0x60, LEN = 0x80, MSH = 0xa0;
    public static final int ADD = 0x00, SUB = 0x10, MUL = 0x20, DIV = 0x30, OR = 0x40, AND = 0x50, LSH = 0x60,
            RSH = 0x70, NEG = 0x80, MOD = 0x90, XOR = 0xa0;
    public static final int JA = 0x00, JEQ = 0x10, JGT = 0x20, JGE = 0x30, JSET = 0x40;
    public static final int K = 0x00, X = 0x08, A = 0x10;
    public static final int TAX = 0x00, TXA = 0x80;

    /** One instruction; {@code code}, {@code jt} and {@code jf} unsigned. */
    public record Instruction(int code, int jt, int jf, int k) {
        public Instruction {
            if (code < 0 || code > 0xffff || jt < 0 || jt > 0xff || jf < 0 || jf > 0xff) {
                throw new IllegalArgumentException("not a BPF instruction: code " + code + " jt " + jt + " jf " + jf);
            }
        }

        /** {@code BPF_STMT(code, k)}. */
        public static Instruction stmt(int code, int k) {
            return new Instruction(code, 0, 0, k);
        }

        /** {@code BPF_JUMP(code, k, jt, jf)}. */
        public static Instruction jump(int code, int k, int jt, int jf) {
            return new Instruction(code, jt, jf, k);
        }

        int instructionClass() {
            return code & 0x07;
        }
    }

    public SeccompFilter {
        program = List.copyOf(program);
        if (program.isEmpty() || program.size() > MAX_INSTRUCTIONS) {
            throw new IllegalArgumentException("a seccomp filter has 1 to " + MAX_INSTRUCTIONS + " instructions, not "
                    + program.size());
        }
    }

    public static SeccompFilter of(Instruction... program) {
        return new SeccompFilter(List.of(program));
    }

    /** Parses the kernel's in-memory form (host byte order: little-endian on x86-64). */
    public static SeccompFilter parse(byte[] raw) {
        if (raw.length % INSTRUCTION_BYTES != 0) {
            throw new IllegalArgumentException("a BPF program is a multiple of 8 bytes, not " + raw.length);
        }
        ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        Instruction[] program = new Instruction[raw.length / INSTRUCTION_BYTES];
        for (int i = 0; i < program.length; i++) {
            program[i] = new Instruction(Short.toUnsignedInt(b.getShort()), Byte.toUnsignedInt(b.get()),
                    Byte.toUnsignedInt(b.get()), b.getInt());
        }
        return new SeccompFilter(List.of(program));
    }

    /** The kernel's in-memory form, as {@code seccomp(SECCOMP_SET_MODE_FILTER)} takes it. */
    public byte[] bytes() {
        ByteBuffer b = ByteBuffer.allocate(program.size() * INSTRUCTION_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (Instruction i : program) {
            b.putShort((short) i.code()).put((byte) i.jt()).put((byte) i.jf()).putInt(i.k());
        }
        return b.array();
    }
}
