package dev.kiln.isolation;

import dev.kiln.KilnException;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Function;

/**
 * One isolation technology: {@code container} (runc), {@code gvisor} (runsc), {@code vm} (QEMU or Firecracker). The
 * engine drives every sandbox through this interface and the {@link SandboxTask} it hands out, and learns what the
 * isolation can do from its {@link Isolation} descriptor; it never sees how (a kiln-shim, an OCI bundle, a VMM). An
 * implementation never reads image content: it gets a {@link SandboxSpec} with the image's tree and the sandbox's own
 * directory, whose layout inside is the isolator's. Isolators are registered in one place, {@link Isolators}.
 */
public interface Isolator {

    /** What this isolation is and can do. */
    Isolation isolation();

    /** Whether it can run sandboxes on this host now (its runtime binary is there, say), and why not. */
    Availability availability();

    /**
     * Refuses, with one line, what this isolation cannot do for a sandbox: a runtime name it knows but cannot run
     * ({@code crun}), a runtime this host lacks ({@code firecracker}), a bad {@code --kernel} or {@code --disk-size},
     * a network its runtime cannot join. Called at create, before any image is pulled.
     */
    void check(SandboxOptions options);

    /** The runtime binary or VMM of a sandbox that asked for {@code runtime} (null: the default), for inspect. */
    String runtime(String runtime);

    /** Makes the sandbox startable (bundle, writable layer, disks); nothing runs yet. Undone by {@link #cleanup}. */
    void create(SandboxSpec spec);

    /**
     * Starts the main process and returns its task. With a non-zero {@code waitAttach} the process waits for the first
     * attach client, or that long, so no early output is missed.
     */
    SandboxTask start(SandboxSpec spec, Duration waitAttach);

    /**
     * The task of a sandbox started earlier, perhaps by an earlier daemon, from what it left on disk; it may have
     * ended since. Not found when the sandbox was never started.
     */
    SandboxTask adopt(SandboxSpec spec);

    /**
     * Whether anything of the sandbox still runs on the host (the runtime's container, the VMM): asked when its
     * monitor died without recording an exit ({@link RunningProcess.Gone}), before {@link #cleanup} kills what is left.
     */
    boolean running(SandboxSpec spec);

    /**
     * Releases what the sandbox holds on the host once its main process is gone (runtime state, mounts, a VMM left
     * over); with {@code removeFiles} also what it holds for the sandbox outside the sandbox's directory (that
     * directory, with the writable layer in it, is the engine's to remove). Kills whatever of the sandbox still runs
     * (its monitor may have died before it). Idempotent, and safe on a half-created sandbox.
     */
    void cleanup(SandboxSpec spec, boolean removeFiles);

    /**
     * Runs {@code work} on the host side of the sandbox's root tree (image + writable layer), for copies in and out:
     * the tree the runtime uses while the sandbox exists ({@code running}: it must be there), else one made for the
     * work and released after. The caller holds the sandbox still. Only for isolations whose {@link FileCopy} allows.
     */
    default <T> T withRootTree(SandboxSpec spec, boolean running, Function<Path, T> work) {
        throw KilnException.invalid("copying files is not supported for the " + isolation().name() + " isolation");
    }

    /**
     * As {@link #withRootTree(SandboxSpec, boolean, Function)}, knowing whether {@code work} writes: an isolation whose
     * tree is read-only in some states (a vm after its first boot) refuses a write with its reason before any work.
     */
    default <T> T withRootTree(SandboxSpec spec, boolean running, boolean write, Function<Path, T> work) {
        return withRootTree(spec, running, work);
    }

    /**
     * Runs {@code work} on what a stopped sandbox changed, in overlayfs's form (an upper directory: whiteouts as 0/0
     * character devices, opaque directories marked): what {@code kiln commit} and a build's RUN step store as a
     * layer. The caller holds the sandbox still.
     */
    default <T> T withChanges(SandboxSpec spec, Function<Path, T> work) {
        throw KilnException.invalid("committing a sandbox's changes is not supported for the " + isolation().name()
                + " isolation");
    }

    /**
     * Saves the running sandbox's state into {@code dir} (made empty by the engine) so {@link #restore} can start it
     * where it was ({@code kiln checkpoint create}, docs/checkpoint.md); without {@code leaveRunning} its run ends
     * (the task's process exits 0). The caller holds the sandbox still. Isolations that cannot refuse with one line.
     */
    default void checkpoint(SandboxSpec spec, SandboxTask task, Path dir, boolean leaveRunning) {
        throw KilnException.invalid("checkpoints are not supported for the " + isolation().name() + " isolation");
    }

    /** Starts the sandbox from the checkpoint in {@code dir} instead of from its command ({@code start --checkpoint}). */
    default SandboxTask restore(SandboxSpec spec, Path dir, Duration waitAttach) {
        throw KilnException.invalid("checkpoints are not supported for the " + isolation().name() + " isolation");
    }

    /** The guest kernels it boots, for isolations that boot one. */
    default Optional<GuestKernels> guestKernels() {
        return Optional.empty();
    }

    /** What inspect adds to a sandbox's {@code HostConfig} for this isolation (the vm isolation: its VMM's jail). */
    default java.util.Map<String, Object> inspect(SandboxSpec spec) {
        return java.util.Map.of();
    }
}
