package dev.kiln.isolation.oci;

import dev.kiln.LibcCall;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A cgroup v1 OOM notification: an eventfd registered through {@code cgroup.event_control} on a memory cgroup's
 * {@code memory.oom_control} (Documentation/admin-guide/cgroup-v1/memory.rst §9, what containerd's v1 OOM watcher
 * and so Docker's OOMKilled use). The kernel signals it each time that cgroup, or one of its ancestors, runs out of
 * memory and invokes the OOM killer; kiln only needs "did it ever happen", so the counter is read without blocking.
 * The kernel also signals it once when the cgroup is removed: read it before the rmdir, and close it first.
 */
final class OomEventFd implements AutoCloseable {

    private static final int EFD_NONBLOCK = 0x800;   // O_NONBLOCK
    private static final int EFD_CLOEXEC = 0x80000;  // O_CLOEXEC
    private static final int O_RDONLY = 0;
    private static final int O_CLOEXEC = 0x80000;

    private static final MethodHandle EVENTFD = LibcCall.withErrno("eventfd",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    // open(2) is variadic: the mode is passed (as 0) and declared variadic, as the C ABI wants
    private static final MethodHandle OPEN = LibcCall.withErrno("open", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle READ = LibcCall.plain("read",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    private static final MethodHandle CLOSE = LibcCall.plain("close",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    private int fd;
    private long seen;

    private OomEventFd(int fd) {
        this.fd = fd;
    }

    /** Registers a new eventfd for OOM notifications of the v1 memory cgroup {@code dir}. */
    static OomEventFd register(Path dir) throws IOException {
        int efd;
        int ofd;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            efd = (int) EVENTFD.invokeExact(state, 0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (efd < 0) {
                throw new IOException("eventfd: errno " + LibcCall.errno(state));
            }
            Path control = dir.resolve("memory.oom_control");
            ofd = (int) OPEN.invokeExact(state, arena.allocateFrom(control.toString()), O_RDONLY | O_CLOEXEC, 0);
            if (ofd < 0) {
                int err = LibcCall.errno(state);
                close(efd);
                throw new IOException("open " + control + ": errno " + err);
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        try {
            // "<event_fd> <fd of memory.oom_control>", both fds of this process; the kernel keeps no reference to
            // the oom_control file once registered, so it is closed right away
            Files.writeString(dir.resolve("cgroup.event_control"), efd + " " + ofd);
        } catch (IOException e) {
            close(efd);
            throw e;
        } finally {
            close(ofd);
        }
        return new OomEventFd(efd);
    }

    /** How many OOM notifications arrived since registration (never blocks). */
    synchronized long count() {
        if (fd < 0) {
            return seen;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(ValueLayout.JAVA_LONG);
            long n = (long) READ.invokeExact(fd, buf, 8L);
            if (n == 8) {
                seen += buf.get(ValueLayout.JAVA_LONG, 0);
            } // -1 (EAGAIN): no new notification
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        return seen;
    }

    @Override
    public synchronized void close() {
        if (fd >= 0) {
            close(fd);
            fd = -1;
        }
    }

    private static void close(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
