package dev.kiln.isolation;

import java.time.Instant;

/**
 * How a shim's command ended, as recorded in exit.json.
 *
 * @param exitCode the exit code, or 128 + signal when a signal killed it (as a shell reports it)
 * @param signal   the signal that killed it, 0 when it exited
 */
public record ExitStatus(int exitCode, int signal, Instant finishedAt) {}
