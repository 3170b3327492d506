package dev.kiln.isolation.vm;

import dev.kiln.LibcCall;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The binds of a kiln-vm pod's directory ({@link DirectoryVm#podShare}, {@link DirectoryVm#podRoot}) with mount(2)
 * through FFM: util-linux's {@code mount} was three processes on a pod's start (the pod directory's bind and its
 * shared propagation at the sandbox's Create, each container's root at its Create: 15-60 ms each here, more on a
 * loaded node).
 *
 * <p>Once the pod's VM runs, its guest can write in the pod directory (virtiofsd serves it read-write: the containers'
 * roots are in it), so a name there may be swapped for a symbolic link to any host path at any moment. A container's
 * root is therefore bound {@link #beneath} and unbound {@link #unbind} without ever following a link.
 */
final class PodBind {
    private static final long MS_BIND = 4096;
    private static final long MS_SHARED = 1 << 20;
    private static final int MNT_DETACH = 2;
    private static final int UMOUNT_NOFOLLOW = 8;
    private static final int EBUSY = 16;

    private PodBind() {
    }

    /** {@code mount --bind source target}, for the pod directory itself (before any guest can reach it). */
    static void bind(Path source, Path target) {
        if (!call(source.toString(), target, MS_BIND)) {
            Tool.run(List.of("mount", "--bind", source.toString(), target.toString()), Duration.ofSeconds(10),
                    "mount");
        }
    }

    /** {@code mount --make-shared target}: binds made under it later propagate to its slaves (virtiofsd's). */
    static void shared(Path target) {
        if (!call("none", target, MS_SHARED)) {
            Tool.run(List.of("mount", "--make-shared", target.toString()), Duration.ofSeconds(10), "mount");
        }
    }

    /**
     * Binds {@code source} on the directory {@code at} itself: {@code at} is opened {@code O_PATH|O_NOFOLLOW|
     * O_DIRECTORY} and the bind made on {@code /proc/self/fd/N}, i.e. on exactly the directory opened, so a link
     * put there is refused (ENOTDIR: such an open gives the link itself) rather than followed. Returns 0 or the errno;
     * no tool to fall back on (mount(8)
     * would follow the link).
     */
    static int beneath(Path source, Path at) {
        int fd = LibcCall.open(at.toString(), LibcCall.O_PATH | LibcCall.O_NOFOLLOW | LibcCall.O_DIRECTORY
                | LibcCall.O_CLOEXEC);
        if (fd < 0) return -fd;
        try {
            return LibcCall.mount(source.toString(), "/proc/self/fd/" + fd, null, MS_BIND, null);
        } finally {
            LibcCall.close(fd);
        }
    }

    /** Unmounts what is mounted on {@code at}, never through a link there (lazily if busy): 0 or the errno. */
    static int unbind(Path at) {
        int errno = LibcCall.umount2(at.toString(), UMOUNT_NOFOLLOW);
        return errno == EBUSY ? LibcCall.umount2(at.toString(), UMOUNT_NOFOLLOW | MNT_DETACH) : errno;
    }

    private static boolean call(String source, Path target, long flags) {
        try {
            return LibcCall.mount(source, target.toString(), null, flags, null) == 0;
        } catch (RuntimeException e) {
            return false; // the tool says what is wrong
        }
    }
}
