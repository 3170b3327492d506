package dev.kiln.isolation.shim;

import dev.kiln.LibcCall;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * kiln-shim's launcher started by glibc's posix_spawn(3) through FFM, instead of the JDK's ProcessBuilder. The JDK
 * spawns its jspawnhelper, which reads the real command from a pipe and execs it: two execs and a dynamically linked
 * helper for every sandbox start and exec, 12–39 ms of kilnd's create and start on this host (docs/shim.md). glibc's
 * posix_spawn clones with CLONE_VM|CLONE_VFORK (no copy of kilnd's page tables) and execs kiln-shim directly.
 *
 * <p>The child gets what ProcessBuilder gave it, no more: stdin and stdout /dev/null, stderr a pipe that this reads
 * for the launcher's one-line error, kilnd's environment and working directory; every other descriptor closed
 * before the exec (posix_spawn_file_actions_addclosefrom_np, whatever its close-on-exec flag: a descriptor another
 * thread opens without O_CLOEXEC at that moment included), an empty signal mask and every signal's default action.
 * Where glibc lacks closefrom (before 2.34, or another libc) {@link #available} is false and the caller keeps
 * ProcessBuilder.
 */
final class Spawn {
    private Spawn() {
    }

    /** The launcher's end: its exit code and what it wrote to stderr. */
    record Exit(int code, String stderr) {}

    /** Whether this libc has everything {@link #run} needs. */
    static boolean available() {
        return Libc.AVAILABLE;
    }

    /**
     * Runs {@code argv} (its first element an absolute path: no PATH search) and waits up to {@code timeout} for it
     * to exit. Empty if it did not: it was then SIGKILLed and reaped. Throws IOException if it could not be started
     * (e.g. ENOENT, EACCES).
     */
    static Optional<Exit> run(List<String> argv, Duration timeout) throws IOException {
        if (!available()) throw new IllegalStateException("posix_spawn with closefrom is not available here");
        int[] pipe = pipe();
        int pid;
        try {
            pid = spawn(argv, pipe[1]);
        } catch (IOException | RuntimeException e) {
            LibcCall.close(pipe[0]);
            LibcCall.close(pipe[1]);
            throw e;
        }
        LibcCall.close(pipe[1]);
        try {
            // the wait blocks in native code, which would pin the caller's carrier (kilnd serves requests on virtual
            // threads): it runs on a platform thread while the caller waits on the future. It leaves the launcher a
            // zombie (WNOWAIT), so its pid cannot be reused before the reap below, and a kill on timeout hits it
            CompletableFuture<Void> exited = CompletableFuture.runAsync(() -> Libc.waitExited(pid), WAITERS);
            try {
                exited.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
            } catch (TimeoutException e) {
                Libc.kill(pid, SIGKILL);
                Libc.reap(pid);
                return Optional.empty();
            } catch (InterruptedException e) {
                Libc.kill(pid, SIGKILL);
                Libc.reap(pid);
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while waiting for " + argv.getFirst(), e);
            } catch (ExecutionException e) {
                Libc.kill(pid, SIGKILL);
                Libc.reap(pid);
                throw new IOException("waiting for " + argv.getFirst() + ": " + e.getCause().getMessage(), e);
            }
            return Optional.of(new Exit(exitCode(Libc.reap(pid)), drain(pipe[0])));
        } finally {
            LibcCall.close(pipe[0]);
        }
    }

    /** The exit code a shell reports: the code, or 128 + the signal. */
    private static int exitCode(int status) {
        int signal = status & 0x7f;
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal;
    }

    private static final int SIGKILL = 9;
    private static final int POSIX_SPAWN_SETSIGDEF = 0x04;
    private static final int POSIX_SPAWN_SETSIGMASK = 0x08;
    private static final int O_NONBLOCK = 04000;
    private static final int F_SETFL = 4;
    private static final int EINTR = 4;

    /** glibc's opaque posix_spawn types are 80 (file actions) and 336 (attributes) bytes on x86-64 and arm64. */
    private static final long FILE_ACTIONS_SIZE = 256;
    private static final long ATTR_SIZE = 512;
    private static final long SIGSET_SIZE = 128;

    private static final ExecutorService WAITERS = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "kiln-shim launcher wait");
        t.setDaemon(true);
        return t;
    });

    private static int spawn(List<String> argv, int stderr) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment actions = arena.allocate(FILE_ACTIONS_SIZE, 16);
            MemorySegment attr = arena.allocate(ATTR_SIZE, 16);
            check("posix_spawn_file_actions_init", (int) Libc.ACTIONS_INIT.invokeExact(actions));
            try {
                check("posix_spawnattr_init", (int) Libc.ATTR_INIT.invokeExact(attr));
                try {
                    MemorySegment devNull = arena.allocateFrom("/dev/null");
                    check("addopen", (int) Libc.ADD_OPEN.invokeExact(actions, 0, devNull, LibcCall.O_RDONLY, 0));
                    check("addopen", (int) Libc.ADD_OPEN.invokeExact(actions, 1, devNull, LibcCall.O_WRONLY, 0));
                    check("adddup2", (int) Libc.ADD_DUP2.invokeExact(actions, stderr, 2));
                    check("addclosefrom_np", (int) Libc.ADD_CLOSEFROM.invokeExact(actions, 3));
                    MemorySegment none = arena.allocate(SIGSET_SIZE, 8);
                    MemorySegment all = arena.allocate(SIGSET_SIZE, 8);
                    check("sigemptyset", (int) Libc.SIGEMPTYSET.invokeExact(none));
                    check("sigfillset", (int) Libc.SIGFILLSET.invokeExact(all));
                    check("posix_spawnattr_setsigmask", (int) Libc.SET_SIGMASK.invokeExact(attr, none));
                    check("posix_spawnattr_setsigdefault", (int) Libc.SET_SIGDEFAULT.invokeExact(attr, all));
                    check("posix_spawnattr_setflags", (int) Libc.SET_FLAGS.invokeExact(attr,
                            (short) (POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)));
                    MemorySegment pid = arena.allocate(ValueLayout.JAVA_INT);
                    int r = (int) Libc.POSIX_SPAWN.invokeExact(pid, arena.allocateFrom(argv.getFirst()), actions,
                            attr, strings(arena, argv), environment(arena));
                    if (r != 0) throw new IOException(LibcCall.describe(r));
                    return pid.get(ValueLayout.JAVA_INT, 0);
                } finally {
                    check("posix_spawnattr_destroy", (int) Libc.ATTR_DESTROY.invokeExact(attr));
                }
            } finally {
                check("posix_spawn_file_actions_destroy", (int) Libc.ACTIONS_DESTROY.invokeExact(actions));
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** A NULL-terminated array of C strings. */
    private static MemorySegment strings(Arena arena, List<String> values) {
        MemorySegment array = arena.allocate(ValueLayout.ADDRESS, values.size() + 1L);
        for (int i = 0; i < values.size(); i++) {
            array.setAtIndex(ValueLayout.ADDRESS, i, arena.allocateFrom(values.get(i)));
        }
        array.setAtIndex(ValueLayout.ADDRESS, values.size(), MemorySegment.NULL);
        return array;
    }

    /** kilnd's environment, as ProcessBuilder passes it (System.getenv: what the JVM was started with). */
    private static MemorySegment environment(Arena arena) {
        Map<String, String> env = System.getenv();
        return strings(arena, env.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).toList());
    }

    /** A close-on-exec pipe whose read end does not block: the launcher's stderr. */
    private static int[] pipe() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(ValueLayout.JAVA_INT, 2);
            if ((int) Libc.PIPE2.invokeExact(fds, LibcCall.O_CLOEXEC) != 0) throw new IOException("pipe2 failed");
            int[] p = {fds.getAtIndex(ValueLayout.JAVA_INT, 0), fds.getAtIndex(ValueLayout.JAVA_INT, 1)};
            // the read end only: the launcher's stderr (the write end) stays a blocking one
            if ((int) Libc.FCNTL.invokeExact(p[0], F_SETFL, O_NONBLOCK) != 0) {
                LibcCall.close(p[0]);
                LibcCall.close(p[1]);
                throw new IOException("fcntl(O_NONBLOCK) of a pipe failed");
            }
            return p;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * What the exited launcher left in the pipe (kiln-shim's monitor points its own stderr at /dev/null before the
     * launcher exits, but the read does not block in case something else still holds the write end).
     */
    private static String drain(int fd) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(4096);
            MemorySegment state = LibcCall.state(arena);
            while (out.size() < 64 * 1024) {
                long n = (long) Libc.READ.invokeExact(state, fd, buf, buf.byteSize());
                if (n > 0) {
                    out.write(buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE), 0, (int) n);
                } else if (n == 0 || LibcCall.errno(state) != EINTR) {
                    break; // EOF, or EAGAIN: nothing more now
                }
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    private static void check(String call, int result) {
        if (result != 0) throw new IllegalStateException(call + " failed: " + LibcCall.describe(result));
    }

    /** The handles, linked on first use; AVAILABLE is false where one is missing. */
    private static final class Libc {
        static final boolean AVAILABLE;
        static final MethodHandle ACTIONS_INIT;
        static final MethodHandle ACTIONS_DESTROY;
        static final MethodHandle ADD_OPEN;
        static final MethodHandle ADD_DUP2;
        static final MethodHandle ADD_CLOSEFROM;
        static final MethodHandle ATTR_INIT;
        static final MethodHandle ATTR_DESTROY;
        static final MethodHandle SET_FLAGS;
        static final MethodHandle SET_SIGMASK;
        static final MethodHandle SET_SIGDEFAULT;
        static final MethodHandle SIGEMPTYSET;
        static final MethodHandle SIGFILLSET;
        static final MethodHandle POSIX_SPAWN;
        static final MethodHandle PIPE2;
        static final MethodHandle FCNTL;
        static final MethodHandle READ;
        static final MethodHandle WAITPID;
        static final MethodHandle WAITID;
        static final MethodHandle KILL;

        static {
            MethodHandle[] h = new MethodHandle[19];
            boolean ok;
            try {
                FunctionDescriptor onePointer = FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS);
                FunctionDescriptor twoPointers = FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS);
                h[0] = LibcCall.plain("posix_spawn_file_actions_init", onePointer);
                h[1] = LibcCall.plain("posix_spawn_file_actions_destroy", onePointer);
                h[2] = LibcCall.plain("posix_spawn_file_actions_addopen", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT));
                h[3] = LibcCall.plain("posix_spawn_file_actions_adddup2", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
                h[4] = LibcCall.plain("posix_spawn_file_actions_addclosefrom_np", FunctionDescriptor.of(
                        ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
                h[5] = LibcCall.plain("posix_spawnattr_init", onePointer);
                h[6] = LibcCall.plain("posix_spawnattr_destroy", onePointer);
                h[7] = LibcCall.plain("posix_spawnattr_setflags", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_SHORT));
                h[8] = LibcCall.plain("posix_spawnattr_setsigmask", twoPointers);
                h[9] = LibcCall.plain("posix_spawnattr_setsigdefault", twoPointers);
                h[10] = LibcCall.plain("sigemptyset", onePointer);
                h[11] = LibcCall.plain("sigfillset", onePointer);
                h[12] = LibcCall.plain("posix_spawn", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS));
                h[13] = LibcCall.plain("pipe2", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.JAVA_INT));
                h[14] = LibcCall.plain("fcntl", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), java.lang.foreign.Linker.Option.firstVariadicArg(2));
                h[15] = LibcCall.withErrno("read", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
                h[16] = LibcCall.withErrno("waitpid", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
                h[18] = LibcCall.withErrno("waitid", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
                h[17] = LibcCall.plain("kill", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT));
                ok = true;
            } catch (RuntimeException e) { // a symbol this libc lacks (NoSuchElementException from find)
                ok = false;
            }
            AVAILABLE = ok;
            ACTIONS_INIT = h[0];
            ACTIONS_DESTROY = h[1];
            ADD_OPEN = h[2];
            ADD_DUP2 = h[3];
            ADD_CLOSEFROM = h[4];
            ATTR_INIT = h[5];
            ATTR_DESTROY = h[6];
            SET_FLAGS = h[7];
            SET_SIGMASK = h[8];
            SET_SIGDEFAULT = h[9];
            SIGEMPTYSET = h[10];
            SIGFILLSET = h[11];
            POSIX_SPAWN = h[12];
            PIPE2 = h[13];
            FCNTL = h[14];
            READ = h[15];
            WAITPID = h[16];
            KILL = h[17];
            WAITID = h[18];
        }

        private static final int P_PID = 1;
        private static final int WEXITED = 4;
        private static final int WNOWAIT = 0x01000000;
        private static final long SIGINFO_SIZE = 128;

        /** Waits until child {@code pid} has exited, leaving it a zombie: waitid(P_PID, WEXITED | WNOWAIT). */
        static void waitExited(int pid) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment info = arena.allocate(SIGINFO_SIZE, 8);
                MemorySegment state = LibcCall.state(arena);
                while ((int) WAITID.invokeExact(state, P_PID, pid, info, WEXITED | WNOWAIT) != 0) {
                    if (LibcCall.errno(state) != EINTR) {
                        throw new IllegalStateException("waitid: " + LibcCall.describe(LibcCall.errno(state)));
                    }
                }
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }

        /** waitpid(pid, &status, 0), again on EINTR: the raw status (at once for a child that has exited). */
        static int reap(int pid) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment status = arena.allocate(ValueLayout.JAVA_INT);
                MemorySegment state = LibcCall.state(arena);
                while (true) {
                    int r = (int) WAITPID.invokeExact(state, pid, status, 0);
                    if (r == pid) return status.get(ValueLayout.JAVA_INT, 0);
                    if (LibcCall.errno(state) != EINTR) {
                        throw new IllegalStateException("waitpid: " + LibcCall.describe(LibcCall.errno(state)));
                    }
                }
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }

        static void kill(int pid, int signal) {
            try {
                int ignored = (int) KILL.invokeExact(pid, signal); // ESRCH: it exited meanwhile
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }
    }
}
