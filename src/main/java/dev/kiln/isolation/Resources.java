package dev.kiln.isolation;

/** Limits from {@code --cpus}, {@code -m} and {@code --pids-limit}; 0 means unlimited. */
public record Resources(long nanoCpus, long memoryBytes, long pidsLimit) {

    public static final Resources UNLIMITED = new Resources(0, 0, 0);
}
