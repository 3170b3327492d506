package dev.kiln;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * libc functions called through FFM, for the few system calls the JDK does not offer (mount, eventfd, ptrace...):
 * one set-up of the linker and of errno's capture for every caller. A handle made {@link #withErrno} takes the
 * capture segment ({@link #state}) as its first argument; {@link #errno} reads it after a failed call.
 */
public final class LibcCall {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE = Linker.Option.captureCallState("errno");

    /**
     * open(2)'s flags kiln uses. O_DIRECTORY and O_NOFOLLOW differ between x86-64 and arm64 (arm64's are x86-64's
     * O_DIRECT and O_LARGEFILE: a wrong one silently follows links), so they are chosen by the JVM's architecture,
     * and no other is guessed.
     */
    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_NONBLOCK = 04000;
    public static final int O_DIRECTORY = byArch(0200000, 040000);
    public static final int O_NOFOLLOW = byArch(0400000, 0100000);
    public static final int O_CLOEXEC = 02000000;
    public static final int O_PATH = 010000000;
    /** unlinkat(2)'s flag to remove a directory. */
    public static final int AT_REMOVEDIR = 0x200;

    private LibcCall() {
    }

    /** libc's {@code name}, errno captured into the segment passed first. */
    public static MethodHandle withErrno(String name, FunctionDescriptor function, Linker.Option... options) {
        Linker.Option[] all = new Linker.Option[options.length + 1];
        all[0] = CAPTURE;
        System.arraycopy(options, 0, all, 1, options.length);
        return plain(name, function, all);
    }

    /** libc's {@code name}, errno not captured. */
    public static MethodHandle plain(String name, FunctionDescriptor function, Linker.Option... options) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), function, options);
    }

    /** A segment for a {@link #withErrno} handle to capture errno into. */
    public static MemorySegment state(Arena arena) {
        return arena.allocate(STATE);
    }

    public static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /**
     * mount(2): {@code flags} the MS_* bits, {@code type} and {@code data} (the file system's options, e.g. overlay's
     * {@code lowerdir=...}) null or empty for none. Returns 0 or the errno. The one mount(2) of kiln's Java code
     * (a sandbox's overlay root, containerd's rootfs, a vm pod's binds); linked on its first call.
     */
    public static int mount(String source, String target, String type, long flags, String data) {
        return call((arena, state) -> (int) Mount.HANDLE.invokeExact(state, arena.allocateFrom(source),
                arena.allocateFrom(target), text(arena, type), flags, text(arena, data)) == 0 ? 0 : errno(state));
    }

    /** umount2(2) of {@code target} with the UMOUNT_* / MNT_* {@code flags}: 0 or the errno; linked on its first call. */
    public static int umount2(String target, int flags) {
        return call((arena, state) -> (int) Umount.HANDLE.invokeExact(state, arena.allocateFrom(target), flags) == 0
                ? 0 : errno(state));
    }

    /** open(2) of {@code path} with the O_* {@code flags} (no O_CREAT): the descriptor, or minus the errno. */
    public static int open(String path, int flags) {
        return call((arena, state) -> {
            int fd = (int) Open.HANDLE.invokeExact(state, arena.allocateFrom(path), flags, 0);
            return fd >= 0 ? fd : -errno(state);
        });
    }

    /*
     * The *at calls take a name as its bytes: a name read from a directory need not be UTF-8 (an image's files), and
     * a String would not give the same bytes back.
     */

    /** openat(2) of {@code name} in the directory {@code dirfd} (no O_CREAT): the descriptor, or minus the errno. */
    public static int openat(int dirfd, byte[] name, int flags) {
        return call((arena, state) -> {
            int fd = (int) Openat.HANDLE.invokeExact(state, dirfd, text(arena, name), flags, 0);
            return fd >= 0 ? fd : -errno(state);
        });
    }

    /** unlinkat(2) of {@code name} in {@code dirfd} ({@link #AT_REMOVEDIR} for a directory): 0 or the errno. */
    public static int unlinkat(int dirfd, byte[] name, int flags) {
        return call((arena, state) -> (int) Unlinkat.HANDLE.invokeExact(state, dirfd, text(arena, name), flags)
                == 0 ? 0 : errno(state));
    }

    /** renameat(2) of {@code from} in {@code fromDir} to {@code to} in {@code toDir}: 0 or the errno. */
    public static int renameat(int fromDir, byte[] from, int toDir, byte[] to) {
        return call((arena, state) -> (int) Renameat.HANDLE.invokeExact(state, fromDir, text(arena, from),
                toDir, text(arena, to)) == 0 ? 0 : errno(state));
    }

    /** fchmod(2): 0 or the errno. */
    public static int fchmod(int fd, int mode) {
        return call((arena, state) -> (int) Fchmod.HANDLE.invokeExact(state, fd, mode) == 0 ? 0 : errno(state));
    }

    /**
     * getdents64(2) of the directory {@code fd} into {@code buffer}: the bytes of {@code struct linux_dirent64}
     * records read, 0 at its end, or minus the errno.
     */
    public static int getdents64(int fd, MemorySegment buffer) {
        return call((arena, state) -> {
            long n = (long) Getdents64.HANDLE.invokeExact(state, fd, buffer, buffer.byteSize());
            return n >= 0 ? (int) n : -errno(state);
        });
    }

    /** statx(2)'s mask bit for the mount id, and the offsets in {@code struct statx} of its mask and of that id. */
    public static final int STATX_MNT_ID = 0x1000;
    static final long STATX_MASK_OFFSET = 0;
    static final long STATX_MNT_ID_OFFSET = 144;
    private static final int STATX_SIZE = 256;
    private static final int AT_STATX_DONT_SYNC = 0x4000;
    private static final int AT_EMPTY_PATH = 0x1000;

    /**
     * The id of the mount that {@code name} in {@code dirfd} is on (statx(2) with STATX_MNT_ID; a link itself, not
     * what it points to; an empty name: {@code dirfd} itself), or minus the errno, -EOPNOTSUPP from a kernel that
     * gives no mount id (before Linux 5.8). Asks only for what the kernel has cached (AT_STATX_DONT_SYNC): a mount
     * point of a FUSE server that hangs answers without the server.
     */
    public static long mountId(int dirfd, byte[] name) {
        return call((arena, state) -> {
            MemorySegment statx = arena.allocate(STATX_SIZE, 8);
            int r = (int) Statx.HANDLE.invokeExact(state, dirfd, text(arena, name), AT_SYMLINK_NOFOLLOW
                    | AT_STATX_DONT_SYNC | (name.length == 0 ? AT_EMPTY_PATH : 0), STATX_MNT_ID, statx);
            if (r != 0) return (long) -errno(state);
            if ((statx.get(ValueLayout.JAVA_INT, STATX_MASK_OFFSET) & STATX_MNT_ID) == 0) return (long) -EOPNOTSUPP;
            return statx.get(ValueLayout.JAVA_LONG, STATX_MNT_ID_OFFSET);
        });
    }

    /** lseek(2)'s whence for the next data and the next hole at or after an offset. */
    public static final int SEEK_DATA = 3;
    public static final int SEEK_HOLE = 4;

    /** lseek(2): the new offset, or -1 (ENXIO: no data or hole past it; EINVAL: not supported here). */
    public static long lseek(int fd, long offset, int whence) {
        return call((arena, state) -> (long) Lseek.HANDLE.invokeExact(fd, offset, whence));
    }

    /** ftruncate(2): 0 or the errno. */
    public static int ftruncate(int fd, long length) {
        return call((arena, state) -> (int) Ftruncate.HANDLE.invokeExact(state, fd, length) == 0 ? 0
                : errno(state));
    }

    /** close(2) of a descriptor {@link #open} gave. */
    public static void close(int fd) {
        if (call((arena, state) -> (int) Close.HANDLE.invokeExact(fd)) != 0) {
            throw new IllegalStateException("close(" + fd + ") failed");
        }
    }

    /** kill(2) of the process group {@code pgid} with SIGKILL; a group that is gone (ESRCH) is not an error. */
    public static void killGroup(long pgid) {
        if (pgid <= 1) throw new IllegalArgumentException("not a process group: " + pgid);
        call((arena, state) -> (int) Kill.HANDLE.invokeExact((int) -pgid, 9));
    }

    /** errno values kiln tells apart (the same on x86-64 and arm64: asm-generic's). */
    public static final int EPERM = 1;
    public static final int ENOENT = 2;
    public static final int EACCES = 13;
    public static final int EEXIST = 17;
    public static final int ENOTDIR = 20;
    public static final int EISDIR = 21;
    public static final int ENOTEMPTY = 39;
    public static final int ELOOP = 40;
    public static final int EOPNOTSUPP = 95;

    /**
     * Whether {@code path} names an entry, its last component not followed if a link: faccessat(2) with F_OK and
     * AT_SYMLINK_NOFOLLOW; 0 or the errno (ENOENT, ENOTDIR: not there). The JDK has no such look-up without an
     * exception: with NOFOLLOW_LINKS it lstat()s and throws (and catches) one inside for every missing entry, which a
     * command's PATH search in an image meets in most directories at every start.
     */
    public static int lookupNoFollow(String path) {
        return call((arena, state) -> (int) Faccessat.HANDLE.invokeExact(state, AT_FDCWD, arena.allocateFrom(path),
                F_OK, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno(state));
    }

    /** strerror(3): what an errno means, for a one-line error ("Too many levels of symbolic links"). */
    public static String describe(int errno) {
        return call((arena, state) -> ((MemorySegment) Strerror.HANDLE.invokeExact(errno)).reinterpret(1024)
                .getString(0));
    }

    /** A downcall with an arena for its arguments and a segment for errno, as the handles above take them. */
    private interface Downcall<T> {
        T run(Arena arena, MemorySegment state) throws Throwable;
    }

    /** Runs {@code downcall}; a handle's checked Throwable (none is expected) becomes an IllegalStateException. */
    private static <T> T call(Downcall<T> downcall) {
        try (Arena arena = Arena.ofConfined()) {
            return downcall.run(arena, state(arena));
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static int byArch(int x86, int arm64) {
        return switch (System.getProperty("os.arch")) {
            case "amd64", "x86_64" -> x86;
            case "aarch64" -> arm64;
            default -> throw new IllegalStateException("open(2)'s flags are not known for " + System.getProperty(
                    "os.arch") + " (kiln runs on x86-64 and arm64)");
        };
    }

    /** {@code name}'s bytes and a NUL, for a call's path argument. */
    private static MemorySegment text(Arena arena, byte[] name) {
        MemorySegment s = arena.allocate(name.length + 1L);
        MemorySegment.copy(name, 0, s, ValueLayout.JAVA_BYTE, 0, name.length);
        return s;
    }

    private static MemorySegment text(Arena arena, String s) {
        return s == null || s.isEmpty() ? MemorySegment.NULL : arena.allocateFrom(s);
    }

    private static final int AT_FDCWD = -100;
    private static final int F_OK = 0;
    private static final int AT_SYMLINK_NOFOLLOW = 0x100;

    private static final class Faccessat {
        static final MethodHandle HANDLE = withErrno("faccessat", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    }

    private static final class Umount {
        static final MethodHandle HANDLE = withErrno("umount2", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    }

    private static final class Open {
        static final MethodHandle HANDLE = withErrno("open", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), Linker.Option.firstVariadicArg(2));
    }

    private static final class Openat {
        static final MethodHandle HANDLE = withErrno("openat", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
                Linker.Option.firstVariadicArg(3));
    }

    private static final class Unlinkat {
        static final MethodHandle HANDLE = withErrno("unlinkat", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    }

    private static final class Renameat {
        static final MethodHandle HANDLE = withErrno("renameat", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    }

    private static final class Fchmod {
        static final MethodHandle HANDLE = withErrno("fchmod", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    }

    private static final class Getdents64 {
        static final MethodHandle HANDLE = withErrno("getdents64", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    }

    private static final class Statx {
        static final MethodHandle HANDLE = withErrno("statx", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS));
    }

    private static final class Ftruncate {
        static final MethodHandle HANDLE = withErrno("ftruncate", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
    }

    private static final class Lseek {
        static final MethodHandle HANDLE = plain("lseek", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    }

    private static final class Close {
        static final MethodHandle HANDLE = plain("close", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT));
    }

    private static final class Kill {
        static final MethodHandle HANDLE = plain("kill", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    }

    private static final class Strerror {
        static final MethodHandle HANDLE = plain("strerror", FunctionDescriptor.of(ValueLayout.ADDRESS,
                ValueLayout.JAVA_INT));
    }

    private static final class Mount {
        static final MethodHandle HANDLE = withErrno("mount", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                ValueLayout.ADDRESS));
    }
}
