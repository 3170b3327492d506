package dev.kiln.rootfs;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * overlayfs's own marks on an upper directory, which live in the {@code trusted.} namespace Java's xattr view cannot
 * read: lgetxattr(2) through FFM. Only {@code trusted.overlay.opaque} is asked for (an opaque directory hides the
 * lower one's entries).
 */
final class OverlayXattr {
    private static final MethodHandle LGETXATTR;

    static {
        Linker linker = Linker.nativeLinker();
        LGETXATTR = linker.downcallHandle(linker.defaultLookup().find("lgetxattr").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    }

    private OverlayXattr() {
    }

    /** The value of {@code trusted.overlay.opaque} on {@code dir}, or null when it has none. */
    static String opaque(Path dir) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment path = arena.allocateFrom(dir.toString());
            MemorySegment name = arena.allocateFrom("trusted.overlay.opaque");
            MemorySegment value = arena.allocate(16);
            long n = (long) LGETXATTR.invokeExact(path, name, value, 16L);
            if (n <= 0) {
                return null;
            }
            return new String(value.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        } catch (Throwable e) {
            return null;
        }
    }
}
