package dev.kiln.audit;

import dev.kiln.LibcCall;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Reads the seccomp filters installed on a live thread, as the kernel holds them: {@code ptrace(PTRACE_SEIZE)},
 * {@code PTRACE_INTERRUPT} and a wait for the stop, then {@code PTRACE_SECCOMP_GET_FILTER} for index 0, 1, … until
 * ENOENT (kernel/seccomp.c get_nth_filter counts from the first installed), then {@code PTRACE_DETACH}. The thread is stopped for well under a
 * millisecond and resumes as it was (a signal that arrived meanwhile is passed on at the detach).
 *
 * <p>Needs CAP_SYS_ADMIN and a caller without a seccomp filter of its own (kernel/seccomp.c), as kilnd runs. ptrace
 * belongs to the calling thread, so each dump runs start to end on one platform thread of its own. The thread must
 * not belong to a child of this JVM: the JDK's process reaper waits on its children and would take the stop
 * notification (kilnd's sandboxes are children of their shims, never of kilnd).
 */
public final class FilterDump {

    private static final int PTRACE_DETACH = 17;
    private static final int PTRACE_SEIZE = 0x4206;
    private static final int PTRACE_INTERRUPT = 0x4207;
    private static final int PTRACE_SECCOMP_GET_FILTER = 0x420c;
    private static final int WNOHANG = 1;
    private static final int WALL = 0x40000000;
    private static final int ENOENT = 2;
    private static final int ESRCH = 3;
    private static final int PTRACE_EVENT_STOP = 128;
    /** How long a thread may take to reach its ptrace stop (one in uninterruptible sleep takes a moment). */
    private static final long STOP_TIMEOUT_MS = 2000;

    // long ptrace(enum __ptrace_request request, ...): glibc reads pid, addr and data as variadic arguments
    private static final MethodHandle PTRACE = LibcCall.withErrno("ptrace", FunctionDescriptor.of(
            ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
            ValueLayout.ADDRESS), Linker.Option.firstVariadicArg(1));
    private static final MethodHandle WAITPID = LibcCall.withErrno("waitpid", FunctionDescriptor.of(
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));

    private FilterDump() {
    }

    /** Why a dump failed, with the errno. */
    public static final class Failure extends IOException {
        Failure(String message) {
            super(message);
        }
    }

    /**
     * The filters of thread {@code tid} (a pid names its main thread), in the order they were installed; empty when it
     * has none. Bounded: a thread that does not stop within 2 s is left alone and reported.
     */
    public static List<SeccompFilter> of(long tid) throws IOException {
        CompletableFuture<List<SeccompFilter>> result = new CompletableFuture<>();
        Thread t = Thread.ofPlatform().daemon().name("kiln-filter-dump-" + tid).start(() -> {
            try {
                result.complete(dump((int) tid));
            } catch (Throwable e) {
                result.completeExceptionally(e);
            }
        });
        try {
            return result.get(STOP_TIMEOUT_MS + 5000, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            throw new IllegalStateException(e.getCause());
        } catch (TimeoutException e) {
            throw new Failure("reading the seccomp filters of " + tid + " timed out");
        } catch (InterruptedException e) {
            t.interrupt();
            Thread.currentThread().interrupt();
            throw new Failure("interrupted while reading the seccomp filters of " + tid);
        }
    }

    /** On the calling (platform) thread: seize, stop, read, detach. */
    private static List<SeccompFilter> dump(int tid) throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            if (ptrace(state, PTRACE_SEIZE, tid, 0, MemorySegment.NULL) < 0) {
                throw failure(state, "ptrace(PTRACE_SEIZE) of " + tid);
            }
            int pendingSignal = 0;
            try {
                if (ptrace(state, PTRACE_INTERRUPT, tid, 0, MemorySegment.NULL) < 0) {
                    throw failure(state, "ptrace(PTRACE_INTERRUPT) of " + tid);
                }
                pendingSignal = awaitStop(arena, state, tid);
                List<SeccompFilter> filters = new ArrayList<>();
                for (int index = 0; ; index++) {
                    long count = ptrace(state, PTRACE_SECCOMP_GET_FILTER, tid, index, MemorySegment.NULL);
                    if (count < 0) {
                        int err = errno(state);
                        if (err == ENOENT) {
                            return filters; // past the newest filter
                        }
                        throw new Failure("ptrace(PTRACE_SECCOMP_GET_FILTER) of " + tid + " index " + index
                                + ": errno " + err + (index == 0 ? " (no filter, or not allowed to read it)" : ""));
                    }
                    MemorySegment buf = arena.allocate(count * SeccompFilter.INSTRUCTION_BYTES);
                    long got = ptrace(state, PTRACE_SECCOMP_GET_FILTER, tid, index, buf);
                    if (got != count) {
                        throw failure(state, "ptrace(PTRACE_SECCOMP_GET_FILTER) of " + tid + " changed size");
                    }
                    filters.add(SeccompFilter.parse(buf.toArray(ValueLayout.JAVA_BYTE)));
                }
            } finally {
                // a thread that has exited needs no detach (ESRCH)
                ptrace(state, PTRACE_DETACH, tid, 0, MemorySegment.ofAddress(pendingSignal));
            }
        }
    }

    /**
     * Waits (polling, bounded) for the tracee's stop. Returns the signal to hand back at the detach when the stop
     * was a signal-delivery stop rather than the interrupt's own.
     */
    private static int awaitStop(Arena arena, MemorySegment state, int tid) throws Throwable {
        MemorySegment status = arena.allocate(ValueLayout.JAVA_INT);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(STOP_TIMEOUT_MS);
        while (true) {
            int r = (int) WAITPID.invokeExact(state, tid, status, WALL | WNOHANG);
            if (r < 0) {
                throw failure(state, "waitpid of " + tid);
            }
            if (r == tid) {
                int s = status.get(ValueLayout.JAVA_INT, 0);
                if ((s & 0xff) != 0x7f) {
                    throw new Failure("thread " + tid + " ended while its filters were read");
                }
                int sig = (s >> 8) & 0xff;
                int event = s >>> 16;
                return event == PTRACE_EVENT_STOP || event != 0 ? 0 : sig;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new Failure("thread " + tid + " did not stop for ptrace within " + STOP_TIMEOUT_MS + " ms");
            }
            Thread.sleep(1);
        }
    }

    private static long ptrace(MemorySegment state, int request, int tid, long addr, MemorySegment data)
            throws Throwable {
        return (long) PTRACE.invokeExact(state, request, tid, addr, data);
    }

    private static int errno(MemorySegment state) {
        return LibcCall.errno(state);
    }

    private static Failure failure(MemorySegment state, String what) {
        int err = errno(state);
        return new Failure(what + ": errno " + err + (err == ESRCH ? " (no such process)" : ""));
    }
}
