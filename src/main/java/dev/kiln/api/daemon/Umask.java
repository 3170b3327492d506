package dev.kiln.api.daemon;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * kilnd's file-creation mask, set at start as dockerd sets its own: what kilnd creates for a sandbox (the writable
 * layer's directories, /etc/hosts, resolv.conf) must not depend on the shell that started it. Under an inherited
 * 077 a non-root workload's {@code /} became 0700 (overlayfs takes the upper directory's mode) and it could not run.
 * Secrets are protected by explicit modes and kiln's 0700 roots, not by the mask.
 */
final class Umask {

    static final int DAEMON = 0022;

    private Umask() {
    }

    /** Sets the mask; returns the one it replaces. */
    static int set(int mask) {
        Linker linker = Linker.nativeLinker();
        MethodHandle umask = linker.downcallHandle(linker.defaultLookup().find("umask").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        try {
            return (int) umask.invokeExact(mask);
        } catch (Throwable e) {
            throw new IllegalStateException("cannot set kilnd's umask: " + e.getMessage(), e);
        }
    }
}
