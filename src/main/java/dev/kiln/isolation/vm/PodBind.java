package dev.kiln.isolation.vm;

import dev.kiln.LibcCall;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The binds of a kiln-vm pod's directory ({@link DirectoryVm#podShare}, {@link DirectoryVm#podRoot}) with mount(2)
 * through FFM: util-linux's {@code mount} was three processes on a pod's start (the pod directory's bind and its
 * shared propagation at the sandbox's Create, each container's root at its Create: 15-60 ms each here, more on a
 * loaded node). When the call fails, {@code mount} is run instead, so the error a user reads stays the tool's.
 */
final class PodBind {
    private static final long MS_BIND = 4096;
    private static final long MS_SHARED = 1 << 20;

    private PodBind() {
    }

    /** {@code mount --bind source target}. */
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

    private static boolean call(String source, Path target, long flags) {
        try {
            return LibcCall.mount(source, target.toString(), null, flags, null) == 0;
        } catch (RuntimeException e) {
            return false; // the tool says what is wrong
        }
    }
}
