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

    private static final Downcall PRCTL = new Downcall("prctl", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_LONG));
    private static final Downcall WAITPID = new Downcall("waitpid", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final Downcall SOCKET = new Downcall("socket", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final Downcall BIND = new Downcall("bind", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final Downcall LISTEN = new Downcall("listen", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final Downcall ACCEPT = new Downcall("accept", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    private static final Downcall RECVMSG = new Downcall("recvmsg", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final Downcall READ = new Downcall("read", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    private static final Downcall WRITE = new Downcall("write", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    private static final Downcall CLOSE = new Downcall("close", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT));
    private static final Downcall MKFIFO = new Downcall("mkfifo", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final Downcall OPEN = new Downcall("open", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final Downcall DUP2 = new Downcall("dup2", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final Downcall CHDIR = new Downcall("chdir", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS));
    private static final Downcall IOCTL = new Downcall("ioctl", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));

    private static final Downcall SETPRIORITY = new Downcall("setpriority", FunctionDescriptor.of(
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    private static final Downcall WAITID = new Downcall("waitid", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));

    private static final int PR_SET_CHILD_SUBREAPER = 36;
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

    /**
     * A libc function's downcall handle, made on first use: making one costs tens of ms of CPU (the FFM linker
     * generates its classes; the AOT cache does not keep them), and an idle spare shim must show itself claimable
     * as early as it can; its warm-up then links them all ({@link #link}), before a claim needs them.
     */
    private static final class Downcall {
        private static final java.util.List<Downcall> ALL = new java.util.concurrent.CopyOnWriteArrayList<>();
        private final String name;
        private final FunctionDescriptor fd;
        private volatile MethodHandle handle;

        Downcall(String name, FunctionDescriptor fd) {
            this.name = name;
            this.fd = fd;
            ALL.add(this);
        }

        MethodHandle get() {
            MethodHandle h = handle;
            if (h == null) {
                synchronized (this) {
                    h = handle;
                    if (h == null) handle = h = LibcCall.withErrno(name, fd);
                }
            }
            return h;
        }
    }

    /** Makes every downcall handle now (a spare's warm-up), so that none is made on a pod's path. */
    static void link() {
        for (Downcall d : Downcall.ALL) d.get();
    }

    /**
     * Sets the nice value of this process's group, every thread of it (Linux keeps a nice value per thread, so
     * {@code PRIO_PROCESS} would change the calling thread only): a claimed spare, started at nice 10, takes the
     * pod's priority back. False if refused (lowering a nice value needs CAP_SYS_NICE).
     */
    static boolean niceGroup(int nice) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            return (int) SETPRIORITY.get().invokeExact(state, PRIO_PGRP, 0, nice) == 0;
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /**
     * mount(2) of {@code source} on {@code target}: {@code flags} the MS_* bits, {@code data} the file system's
     * options (e.g. overlay's lowerdir=...). Returns 0 or the errno.
     */
    static int mount(String source, String target, String type, long flags, String data) {
        return LibcCall.mount(source, target, type, flags, data);
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
                int r = (int) WAITID.get().invokeExact(state, P_ALL, 0, info, WEXITED | WNOWAIT);
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
            int r = (int) PRCTL.get().invokeExact(state, PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L);
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
                int r = (int) WAITPID.get().invokeExact(state, pid, status, 0);
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
            int fd = (int) SOCKET.get().invokeExact(state, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) throw new IllegalStateException("socket: errno " + errno(state));
            byte[] name = path.getBytes(StandardCharsets.UTF_8);
            if (name.length >= 108) throw new IllegalStateException("socket path too long: " + path);
            MemorySegment addr = arena.allocate(110);
            addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
            MemorySegment.copy(name, 0, addr, ValueLayout.JAVA_BYTE, 2, name.length);
            if ((int) BIND.get().invokeExact(state, fd, addr, 110) != 0 || (int) LISTEN.get().invokeExact(state, fd, 1) != 0) {
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
            int conn = (int) ACCEPT.get().invokeExact(state, listenFd, MemorySegment.NULL, MemorySegment.NULL);
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
                msg.set(ValueLayout.JAVA_LONG, 40, 64L);
                long n = (long) RECVMSG.get().invokeExact(state, conn, msg, 0);
                if (n < 0) throw new IllegalStateException("recvmsg: errno " + errno(state));
                // struct cmsghdr: size_t len; int level; int type; then the fds
                long len = control.get(ValueLayout.JAVA_LONG, 0);
                int level = control.get(ValueLayout.JAVA_INT, 8);
                int type = control.get(ValueLayout.JAVA_INT, 12);
                if (msg.get(ValueLayout.JAVA_LONG, 40) < 20 || len < 20 || level != SOL_SOCKET || type != SCM_RIGHTS) {
                    throw new IllegalStateException("the console socket received no file descriptor");
                }
                return control.get(ValueLayout.JAVA_INT, 16);
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
                long n = (long) READ.get().invokeExact(state, fd, buf, (long) buffer.length);
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
                long n = (long) WRITE.get().invokeExact(state, fd, buf.asSlice(off), length - off);
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
            int r = (int) IOCTL.get().invokeExact(state, fd, TIOCSWINSZ, ws);
            if (r != 0) throw new IllegalStateException("ioctl(TIOCSWINSZ): errno " + errno(state));
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    /** mkfifo(3) with {@code mode} (the umask applies). */
    static void mkfifo(String path, int mode) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            int r = (int) MKFIFO.get().invokeExact(state, arena.allocateFrom(path), mode);
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
            int probe = (int) OPEN.get().invokeExact(state, name, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
            if (probe < 0) return false;
            int fd = (int) OPEN.get().invokeExact(state, name, O_WRONLY | O_CLOEXEC);
            close(probe);
            if (fd < 0) return false;
            int a = (int) DUP2.get().invokeExact(state, fd, 1);
            int b = (int) DUP2.get().invokeExact(state, fd, 2);
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
            int r = (int) CHDIR.get().invokeExact(state, arena.allocateFrom(path));
            if (r != 0) throw new IllegalStateException("chdir " + path + ": errno " + errno(state));
        } catch (Throwable e) {
            throw rethrow(e);
        }
    }

    static void close(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            int ignored = (int) CLOSE.get().invokeExact(state, fd);
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
