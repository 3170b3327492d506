package dev.kiln.isolation.vm;

import java.util.List;

/** What the engine (and tests outside this package) may ask about the Firecracker runtime before a sandbox exists. */
public final class Firecracker {
    private Firecracker() {
    }

    /** Throws the one-line error naming what this host lacks for {@code --runtime firecracker}. */
    public static void requireAvailable() {
        FirecrackerCommand.requireAvailable();
    }

    /** What this host lacks for Firecracker, one reason each; empty when the binary and a working /dev/kvm are here. */
    public static List<String> missing() {
        return FirecrackerCommand.missing();
    }
}
