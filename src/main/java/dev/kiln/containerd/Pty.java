package dev.kiln.containerd;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * A pseudo-terminal the shim makes itself (runc makes its own and sends the master; a VM task's relay just needs a
 * terminal as its stdio: it puts it in raw mode and the guest's own pty does the line discipline). {@code master}
 * stays in the shim (copied to and from containerd's fifos, resized there); the relay opens {@code slave}. The shim
 * holds the slave open too ({@code slaveHold}, O_NOCTTY) until the relay is gone: a master whose slave was never
 * opened, or closed for a moment, reads EIO, which would end the copy before the relay even started.
 */
record Pty(int master, Path slave, int slaveHold) {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle OPENPT = handle("posix_openpt", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT));
    private static final MethodHandle OPEN = handle("open", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle UNLOCKPT = handle("unlockpt", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT));
    private static final MethodHandle PTSNAME_R = handle("ptsname_r", FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    private static final int O_RDWR = 2;
    private static final int O_NOCTTY = 0400;
    private static final int O_CLOEXEC = 02000000;

    private static MethodHandle handle(String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), fd);
    }

    static Pty open() {
        try (Arena arena = Arena.ofConfined()) {
            int master = (int) OPENPT.invokeExact(O_RDWR | O_NOCTTY | O_CLOEXEC);
            if (master < 0) throw TtrpcServer.RpcError.precondition("cannot open a terminal (posix_openpt)");
            MemorySegment name = arena.allocate(128);
            if ((int) UNLOCKPT.invokeExact(master) != 0 || (int) PTSNAME_R.invokeExact(master, name, 128L) != 0) {
                Libc.close(master);
                throw TtrpcServer.RpcError.precondition("cannot open a terminal (unlockpt/ptsname)");
            }
            int hold = (int) OPEN.invokeExact(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
            if (hold < 0) {
                Libc.close(master);
                throw TtrpcServer.RpcError.precondition("cannot open a terminal (" + name.getString(0) + ")");
            }
            return new Pty(master, Path.of(name.getString(0)), hold);
        } catch (TtrpcServer.RpcError e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException(e.getMessage(), e);
        }
    }
}
