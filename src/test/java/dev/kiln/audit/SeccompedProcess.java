package dev.kiln.audit;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.HexFormat;

/**
 * A real process under known seccomp filters, for {@link FilterDumpTest}: sets no_new_privs, installs each filter
 * given (hex of its bytes, in order, on every thread: SECCOMP_FILTER_FLAG_TSYNC), prints "ready PID" and sleeps
 * until killed. Run as its own JVM, since a filter cannot be taken off again.
 */
public final class SeccompedProcess {
    private static final int PR_SET_NO_NEW_PRIVS = 38;
    private static final long SYS_SECCOMP = 317;
    private static final int SECCOMP_SET_MODE_FILTER = 1;
    private static final int SECCOMP_FILTER_FLAG_TSYNC = 1;

    public static void main(String[] args) throws Throwable {
        Linker linker = Linker.nativeLinker();
        var libc = linker.defaultLookup();
        MethodHandle prctl = linker.downcallHandle(libc.find("prctl").orElseThrow(), FunctionDescriptor.of(
                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), Linker.Option.firstVariadicArg(1));
        MethodHandle syscall = linker.downcallHandle(libc.find("syscall").orElseThrow(), FunctionDescriptor.of(
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                ValueLayout.ADDRESS), Linker.Option.firstVariadicArg(1));
        if ((int) prctl.invokeExact(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0) {
            throw new IllegalStateException("prctl(PR_SET_NO_NEW_PRIVS) failed");
        }
        try (Arena arena = Arena.ofConfined()) {
            for (String hex : args) {
                byte[] program = HexFormat.of().parseHex(hex);
                MemorySegment filter = arena.allocateFrom(ValueLayout.JAVA_BYTE, program);
                MemorySegment fprog = arena.allocate(16, 8); // struct sock_fprog { u16 len; struct sock_filter *filter; }
                fprog.set(ValueLayout.JAVA_SHORT, 0, (short) (program.length / 8));
                fprog.set(ValueLayout.ADDRESS, 8, filter);
                long r = (long) syscall.invokeExact(SYS_SECCOMP, (long) SECCOMP_SET_MODE_FILTER,
                        (long) SECCOMP_FILTER_FLAG_TSYNC, fprog);
                if (r != 0) {
                    throw new IllegalStateException("seccomp(SECCOMP_SET_MODE_FILTER) returned " + r);
                }
            }
        }
        System.out.println("ready " + ProcessHandle.current().pid());
        System.out.flush();
        Thread.sleep(120_000);
    }
}
