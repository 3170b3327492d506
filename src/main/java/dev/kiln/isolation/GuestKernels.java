package dev.kiln.isolation;

import java.util.List;

/**
 * The narrow capability of an isolation that boots a guest kernel (the vm isolation): which kernels it can boot
 * ({@code kiln kernels}) and how this host runs them (inspect's {@code Accelerator}). Asked through
 * {@link Isolator#guestKernels()}, so the engine never tests for a particular isolator.
 */
public interface GuestKernels {

    /** A kernel the isolation can boot ({@code modulesDir} null: no modules for it on the host). */
    record Known(String version, String image, String modulesDir, boolean isDefault) {
    }

    /** The kernels on this host and the configured one, oldest first; the one booted without --kernel marked. */
    List<Known> known();

    /** {@code kvm}, or {@code tcg} (emulated: seconds per boot). */
    String accelerator();

}
