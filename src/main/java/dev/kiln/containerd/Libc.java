package dev.kiln.containerd;

import dev.kiln.LibcCall;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;

/**
 * The few system calls the shim needs and Java lacks: becoming a child subreaper (the container's init is re-parented
 * to the shim when {@code runc create} exits, as in containerd's runc shim) and waiting for it; receiving the
 * terminal's master over a unix socket (runc's {@code --console-socket} sends it with SCM_RIGHTS); reading and writing
 * and resizing that terminal.
 */
final class Libc {
    private Libc() {
    }

    /**
     * One downcall for every system call of the shim: libc's {@code syscall(3)}, the number first and up to six
     * integer-sized arguments (addresses as numbers). The FFM linker generates classes for each handle it makes
     * (~20-40 ms of CPU each, at load 7-9, and more for the first; the AOT cache does not keep them): seventeen
     * handles, one per libc function, took 0.4-0.7 s of a spare shim's warm-up, every spare, which a pod started
     * back to back with the spare's start then competed with. Linked on first use (the idle fifo's mknodat).
     */
    private static final class Syscall {
        static final MethodHandle HANDLE = LibcCall.withErrno("syscall", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
                java.lang.foreign.Linker.Option.firstVariadicArg(1));
    }

    /** The system call numbers the shim uses: Linux's x86-64 and arm64 tables (the generic *at/dup3/wait4 calls). */
    enum Nr {
        READ(0, 63), WRITE(1, 64), CLOSE(3, 57), IOCTL(16, 29), SOCKET(41, 198), ACCEPT4(288, 242), RECVMSG(47, 212),
        BIND(49, 200), LISTEN(50, 201), WAIT4(61, 260), CHDIR(80, 49), SETPRIORITY(141, 140), PRCTL(157, 167),
        MOUNT(165, 40), WAITID(247, 95), OPENAT(257, 56), MKNODAT(259, 33), DUP3(292, 24);

        final long number;

        Nr(int x86, int arm64) {
            this.number = arm64() ? arm64 : x86;
        }

        private static boolean arm64() {
            return switch (System.getProperty("os.arch")) {
                case "amd64", "x86_64" -> false;
                case "aarch64" -> true;
                default -> throw new IllegalStateException("containerd-shim-kiln-v2 knows the system calls of x86-64 "
                        + "and arm64 only, not of " + System.getProperty("os.arch"));
            };
        }
    }

    /** syscall(2) {@code nr} with {@code args} (at most six): its result, -1 with errno in {@code state} on failure. */
    private static long sys(MemorySegment state, Nr nr, long... args) throws Throwable {
        long[] a = java.util.Arrays.copyOf(args, 6);
        return (long) Syscall.HANDLE.invokeExact(state, nr.number, a[0], a[1], a[2], a[3], a[4], a[5]);
    }

    private static final int PR_SET_CHILD_SUBREAPER = 36;
    private static final long MSG_CMSG_CLOEXEC = 0x40000000;
    private static final int MSG_CTRUNC = 0x8;
    private static final long ONE_FD_CONTROL = 20;   // CMSG_LEN(sizeof(int)): a cmsghdr (16) and one int
    private static final int PRIO_PGRP = 1;
    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_CLOEXEC = 02000000;
    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;
    private static final long TIOCSWINSZ = 0x5414;
    private static final int EINTR = 4;
    private static final int O_WRONLY = 1;
    private static final int O_NONBLOCK = 04000;
    private static final int O_CLOEXEC = 02000000;
    private static final long AT_FDCWD = -100;
    private static final long S_IFIFO = 0010000;

    /** Makes the downcall handle now (a spare's warm-up, if its idle fifo did not), so that none is made on a pod's path. */
    static void link() {
        MethodHandle linked = Syscall.HANDLE;
    }

    /**
     * Sets the nice value of this process's group, every thread of it (Linux keeps a nice value per thread, so
     * {@code PRIO_PROCESS} would change the calling thread only): a claimed spare, started at nice 10, takes the
     * pod's priority back. False if refused (lowering a nice value needs CAP_SYS_NICE).
     */
    static boolean niceGroup(int nice) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            return sys(state, Nr.SETPRIORITY, PRIO_PGRP, 0, nice) == 0;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /**
     * mount(2) of {@code source} on {@code target}: {@code flags} the MS_* bits, {@code data} the file system's
     * options (e.g. overlay's lowerdir=...). Returns 0 or the errno.
     */
    static int mount(String source, String target, String type, long flags, String data) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            long r = sys(state, Nr.MOUNT, arena.allocateFrom(source).address(), arena.allocateFrom(target).address(),
                    text(arena, type), flags, text(arena, data));
            return r == 0 ? 0 : errno(state);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /** A C string's address, 0 (NULL) for none. */
    private static long text(Arena arena, String s) {
        return s == null || s.isEmpty() ? 0 : arena.allocateFrom(s).address();
    }

    private static final int P_ALL = 0;
    private static final int WEXITED = 4;
    private static final int WNOWAIT = 0x01000000;
    private static final int ECHILD = 10;

    /**
     * Blocks until a child of this process has ended, and returns its pid without reaping it (waitid with
     * WNOWAIT: whoever waits for it reaps it); 0 if this process has no child at all (ECHILD).
     */
    static int nextEnded() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            MemorySegment info = arena.allocate(128);   // siginfo_t
            while (true) {
                int r = (int) sys(state, Nr.WAITID, P_ALL, 0, info.address(), WEXITED | WNOWAIT, 0);
                if (r == 0) return info.get(ValueLayout.JAVA_INT, 16);   // si_pid
                int errno = errno(state);
                if (errno == ECHILD) return 0;
                if (errno != EINTR) throw new IllegalStateException("waitid: errno " + errno);
            }
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /** Orphans of the shim's children (the container's init after {@code runc create}) become its children. */
    static void becomeSubreaper() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            int r = (int) sys(state, Nr.PRCTL, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            if (r != 0) throw new IllegalStateException("prctl(PR_SET_CHILD_SUBREAPER): errno " + errno(state));
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /**
     * Blocks until {@code pid} (a child of this process) ends; its wait status decoded as a shell does: the exit
     * code, or 128 + the signal that killed it. -1 if it is not (or no longer) a child.
     */
    static int waitFor(int pid) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            MemorySegment status = arena.allocate(ValueLayout.JAVA_INT);
            while (true) {
                int r = (int) sys(state, Nr.WAIT4, pid, status.address(), 0, 0);
                if (r == pid) {
                    int s = status.get(ValueLayout.JAVA_INT, 0);
                    int sig = s & 0x7f;
                    return sig == 0 ? (s >> 8) & 0xff : 128 + sig;
                }
                if (r < 0 && errno(state) == EINTR) continue;
                return -1;
            }
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /** A listening unix socket at {@code path} (for runc's --console-socket): its fd. */
    static int listenUnix(String path) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            int fd = (int) sys(state, Nr.SOCKET, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) throw new IllegalStateException("socket: errno " + errno(state));
            byte[] name = path.getBytes(StandardCharsets.UTF_8);
            if (name.length >= 108) throw new IllegalStateException("socket path too long: " + path);
            MemorySegment addr = arena.allocate(110);
            addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
            MemorySegment.copy(name, 0, addr, ValueLayout.JAVA_BYTE, 2, name.length);
            if (sys(state, Nr.BIND, fd, addr.address(), 110) != 0 || sys(state, Nr.LISTEN, fd, 1) != 0) {
                int err = errno(state);
                close(fd);
                throw new IllegalStateException("bind/listen " + path + ": errno " + err);
            }
            return fd;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /** Accepts one connection on {@code listenFd} and returns the file descriptor it sends (SCM_RIGHTS). */
    static int receiveFd(int listenFd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            int conn = (int) sys(state, Nr.ACCEPT4, listenFd, 0, 0, SOCK_CLOEXEC);
            if (conn < 0) throw new IllegalStateException("accept: errno " + errno(state));
            try {
                MemorySegment data = arena.allocate(4096);
                MemorySegment iov = arena.allocate(16);
                iov.set(ValueLayout.ADDRESS, 0, data);
                iov.set(ValueLayout.JAVA_LONG, 8, 4096L);
                MemorySegment control = arena.allocate(64);
                MemorySegment msg = arena.allocate(56);   // struct msghdr on x86_64/aarch64
                msg.set(ValueLayout.ADDRESS, 16, iov);
                msg.set(ValueLayout.JAVA_LONG, 24, 1L);
                msg.set(ValueLayout.ADDRESS, 32, control);
                // CMSG_LEN(sizeof(int)): room for exactly one descriptor, so the kernel installs no second one and
                // says MSG_CTRUNC when more were sent (CMSG_SPACE's 24 would take two without saying so)
                msg.set(ValueLayout.JAVA_LONG, 40, ONE_FD_CONTROL);
                // the terminal received is the shim's alone: not inherited by the runc processes it starts next
                long n = sys(state, Nr.RECVMSG, conn, msg.address(), MSG_CMSG_CLOEXEC);
                if (n < 0) throw new IllegalStateException("recvmsg: errno " + errno(state));
                // struct cmsghdr: size_t len; int level; int type; then the fds
                long len = control.get(ValueLayout.JAVA_LONG, 0);
                int level = control.get(ValueLayout.JAVA_INT, 8);
                int type = control.get(ValueLayout.JAVA_INT, 12);
                if (msg.get(ValueLayout.JAVA_LONG, 40) != ONE_FD_CONTROL || len != ONE_FD_CONTROL
                        || level != SOL_SOCKET || type != SCM_RIGHTS) {
                    throw new IllegalStateException("the console socket received no file descriptor");
                }
                int fd = control.get(ValueLayout.JAVA_INT, 16);
                if ((msg.get(ValueLayout.JAVA_INT, 48) & MSG_CTRUNC) != 0) { // more than one: not runc's console
                    close(fd);
                    throw new IllegalStateException("the console socket received more than one file descriptor");
                }
                return fd;
            } finally {
                close(conn);
            }
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /** read(2); 0 at end of file (or EIO: a terminal whose last slave closed), never negative. */
    static int read(int fd, byte[] buffer) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            MemorySegment buf = arena.allocate(buffer.length);
            while (true) {
                long n = sys(state, Nr.READ, fd, buf.address(), buffer.length);
                if (n < 0 && errno(state) == EINTR) continue;
                if (n <= 0) return 0;
                MemorySegment.copy(buf, ValueLayout.JAVA_BYTE, 0, buffer, 0, (int) n);
                return (int) n;
            }
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /** write(2) of all of {@code data}; false if the fd is gone. */
    static boolean write(int fd, byte[] data, int length) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            MemorySegment buf = arena.allocate(Math.max(1, length));
            MemorySegment.copy(data, 0, buf, ValueLayout.JAVA_BYTE, 0, length);
            long off = 0;
            while (off < length) {
                long n = sys(state, Nr.WRITE, fd, buf.address() + off, length - off);
                if (n < 0 && errno(state) == EINTR) continue;
                if (n <= 0) return false;
                off += n;
            }
            return true;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /** TIOCSWINSZ on a terminal's master. */
    static void resize(int fd, int width, int height) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            MemorySegment ws = arena.allocate(8);
            ws.set(ValueLayout.JAVA_SHORT, 0, (short) height);
            ws.set(ValueLayout.JAVA_SHORT, 2, (short) width);
            int r = (int) sys(state, Nr.IOCTL, fd, TIOCSWINSZ, ws.address());
            if (r != 0) throw new IllegalStateException("ioctl(TIOCSWINSZ): errno " + errno(state));
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /** mkfifo(3) with {@code mode} (the umask applies). */
    static void mkfifo(String path, int mode) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            int r = (int) sys(state, Nr.MKNODAT, AT_FDCWD, arena.allocateFrom(path).address(), S_IFIFO | mode, 0);
            if (r != 0) throw new IllegalStateException("mkfifo " + path + ": errno " + errno(state));
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /**
     * Re-points this process's stdout and stderr at the fifo {@code path} (a spare shim's claim: its output goes to
     * the bundle's log fifo, as a shim started by the launcher with {@code >>log} has it). False, leaving both as
     * they are, when nobody reads the fifo: a probe opens it non-blocking first, so this never blocks on a fifo
     * without a reader (containerd holds its end open read-write while the shim runs).
     */
    static boolean redirectOutput(String path) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            MemorySegment name = arena.allocateFrom(path);
            int probe = (int) sys(state, Nr.OPENAT, AT_FDCWD, name.address(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
            if (probe < 0) return false;
            int fd = (int) sys(state, Nr.OPENAT, AT_FDCWD, name.address(), O_WRONLY | O_CLOEXEC);
            close(probe);
            if (fd < 0) return false;
            // dup2's effect (dup3 refuses a descriptor onto itself, which dup2 leaves as it is)
            int a = fd == 1 ? 1 : (int) sys(state, Nr.DUP3, fd, 1, 0);
            int b = fd == 2 ? 2 : (int) sys(state, Nr.DUP3, fd, 2, 0);
            close(fd);
            return a == 1 && b == 2;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /** chdir(2): the processes the shim starts inherit it, as under a shim started in the bundle. */
    static void chdir(String path) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            int r = (int) sys(state, Nr.CHDIR, arena.allocateFrom(path).address());
            if (r != 0) throw new IllegalStateException("chdir " + path + ": errno " + errno(state));
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    static void close(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            sys(state, Nr.CLOSE, fd);
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    private static int errno(MemorySegment state) {
        return LibcCall.errno(state);
    }

    private static RuntimeException rethrow(Throwable e) {
        return e instanceof RuntimeException r ? r : new IllegalStateException(e.getMessage(), e);
    }
}
