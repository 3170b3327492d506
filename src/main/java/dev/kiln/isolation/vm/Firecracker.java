package dev.kiln.isolation.vm;

/** What the engine may ask about the Firecracker runtime before its driver is wired into sandboxes. */
public final class Firecracker {
    private Firecracker() {
    }

    /** Throws the one-line error naming what this host lacks for {@code --runtime firecracker}. */
    public static void requireAvailable() {
        FirecrackerCommand.requireAvailable();
    }
}
