package dev.kiln.isolation.vm.jail;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * A seccomp filter as classic BPF: the raw {@code struct sock_filter} array (x86-64 byte order) kiln-shim installs
 * in the VMM's process just before its exec (docs/vm.md, "The VMM's jail"). Compiled from allowlist rules:
 *
 * <pre>
 *   load arch;  arch != AUDIT_ARCH_X86_64   → kill-process   (no other ABI's numbers can be meant)
 *   load nr;    nr has the x32 bit (2^30)   → kill-process   (x32 calls reach the same kernel code)
 *   nr == each plain allowed syscall        → allow
 *   nr == each soft refusal                 → errno N
 *   nr == each syscall with an argument check: load the argument; a match → allow, else → kill-process
 *   anything else                           → kill-process
 * </pre>
 *
 * A linear list is enough for ~60 entries: the kernel caches the verdict of every syscall whose answer does not depend
 * on its arguments (Linux 5.11+), so only the few argument-checked calls run the program at all.
 */
public record BpfProgram(List<Insn> instructions) {

    /** One {@code struct sock_filter}. */
    public record Insn(int code, int jt, int jf, long k) {}

    static final int AUDIT_ARCH_X86_64 = 0xc000003e;
    static final long X32_SYSCALL_BIT = 0x40000000L;
    static final long RET_KILL_PROCESS = 0x80000000L;
    static final long RET_ERRNO = 0x00050000L;
    static final long RET_ALLOW = 0x7fff0000L;
    /** struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8 i (the low half first: little-endian). */
    static final int OFF_NR = 0;
    static final int OFF_ARCH = 4;
    static final int OFF_ARGS = 16;

    private static final int BPF_LD_W_ABS = 0x20;   // BPF_LD | BPF_W | BPF_ABS
    private static final int BPF_JEQ_K = 0x15;      // BPF_JMP | BPF_JEQ | BPF_K
    private static final int BPF_JSET_K = 0x45;     // BPF_JMP | BPF_JSET | BPF_K
    private static final int BPF_AND_K = 0x54;      // BPF_ALU | BPF_AND | BPF_K
    private static final int BPF_RET_K = 0x06;      // BPF_RET | BPF_K
    private static final int MAX_INSNS = 4096;      // BPF_MAXINSNS

    /** The filter for these rules (one per syscall: {@link SeccompAllowlist#rulesFor}). */
    public static BpfProgram compile(List<SeccompAllowlist.Rule> rules) {
        // Built back to front, so every jump goes forward to an instruction whose position is already known.
        List<Insn> tail = new ArrayList<>(); // reversed
        tail.add(ret(RET_ALLOW));
        int allow = 0; // position of the allow return, counted from the end
        tail.add(ret(RET_KILL_PROCESS));
        int kill = 1;
        for (SeccompAllowlist.Rule r : rules.reversed()) {
            if (r.args() != null) { // jeq nr ? (check block) : past it; the block returns, so A is nr again past it
                List<Insn> block = new ArrayList<>(); // reversed
                block.add(ret(RET_KILL_PROCESS));
                SeccompAllowlist.ArgCheck a = r.args();
                if (a.masked()) {
                    block.add(new Insn(BPF_JEQ_K, 0, 0, a.value())); // jumps set below
                    block.add(new Insn(BPF_AND_K, 0, 0, a.mask()));
                } else {
                    for (long v : a.in().reversed()) block.add(new Insn(BPF_JEQ_K, 0, 0, v));
                }
                block.add(new Insn(BPF_LD_W_ABS, 0, 0, OFF_ARGS + 8L * a.index()));
                // the block's jeqs jump to allow on a match, fall through otherwise (to the next value, or the kill)
                int base = tail.size();
                for (int i = 0; i < block.size(); i++) {
                    Insn in = block.get(i);
                    if (in.code() == BPF_JEQ_K) {
                        int here = base + i; // position from the end
                        block.set(i, new Insn(BPF_JEQ_K, distance(here, allow), 0, in.k()));
                    }
                }
                tail.addAll(block);
                tail.add(new Insn(BPF_JEQ_K, 0, block.size(), r.nr()));
            } else if (r.allows()) {
                tail.add(new Insn(BPF_JEQ_K, distance(tail.size(), allow), 0, r.nr()));
            } else {
                tail.add(ret(RET_ERRNO | r.errno()));
                tail.add(new Insn(BPF_JEQ_K, 0, 1, r.nr())); // → the errno return just added; else over it
            }
        }
        tail.add(new Insn(BPF_JSET_K, distance(tail.size(), kill), 0, X32_SYSCALL_BIT));
        tail.add(new Insn(BPF_LD_W_ABS, 0, 0, OFF_NR));
        tail.add(new Insn(BPF_JEQ_K, 0, distance(tail.size(), kill), AUDIT_ARCH_X86_64 & 0xffffffffL));
        tail.add(new Insn(BPF_LD_W_ABS, 0, 0, OFF_ARCH));
        if (tail.size() > MAX_INSNS) throw new IllegalStateException("seccomp filter too long: " + tail.size());
        return new BpfProgram(List.copyOf(tail.reversed()));
    }

    /** A jump offset from the instruction at {@code from} to the one at {@code to}, both counted from the end. */
    private static int distance(int from, int to) {
        int d = from - to - 1;
        if (d < 0 || d > 255) throw new IllegalStateException("seccomp filter jump out of range: " + d);
        return d;
    }

    private static Insn ret(long k) {
        return new Insn(BPF_RET_K, 0, 0, k);
    }

    /** The raw filter kiln-shim's {@code --seccomp FILE} takes. */
    public byte[] bytes() {
        ByteBuffer b = ByteBuffer.allocate(8 * instructions.size()).order(ByteOrder.LITTLE_ENDIAN);
        for (Insn in : instructions) {
            b.putShort((short) in.code()).put((byte) in.jt()).put((byte) in.jf()).putInt((int) in.k());
        }
        return b.array();
    }

    public int length() {
        return instructions.size();
    }
}
