package dev.kiln.testing;

import org.junit.jupiter.api.Assumptions;

/** The precondition of every test that boots a microVM (seconds each under TCG). */
public final class VmTests {

    private VmTests() {
    }

    /** Skips in fast runs ({@code KILN_FAST=1 scripts/test}) and where QEMU is not installed. */
    public static void require() {
        Assumptions.assumeFalse(Boolean.getBoolean("kiln.fast"), "VM boots are skipped in fast runs (KILN_FAST)");
        Command.require("qemu-system-x86_64", "qemu-system-x86");
    }
}
