package dev.kiln.isolation;

/** A sample of a sandbox's resource use; cpu is cumulative, so two samples give a rate. */
public record SandboxStats(long cpuNanos, long memoryBytes, long memoryLimitBytes, long pids) {
}
