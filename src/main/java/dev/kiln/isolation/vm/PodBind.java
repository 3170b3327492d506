package dev.kiln.isolation.vm;

import dev.kiln.LibcCall;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
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

    private static final MethodHandle MOUNT = LibcCall.withErrno("mount", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));

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
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = LibcCall.state(arena);
            return (int) MOUNT.invokeExact(state, arena.allocateFrom(source), arena.allocateFrom(target.toString()),
                    MemorySegment.NULL, flags, MemorySegment.NULL) == 0;
        } catch (RuntimeException e) {
            return false; // the tool says what is wrong
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
