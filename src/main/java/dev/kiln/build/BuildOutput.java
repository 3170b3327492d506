package dev.kiln.build;

/**
 * Where a build reports, in the shape of Docker's classic builder progress: {@code text} is a piece of the
 * {@code stream} (lines with their newline), {@code imageId} the {@code aux} message with the result's ID. Errors are
 * thrown, and the caller reports them (Docker's {@code errorDetail}).
 */
public interface BuildOutput {
    void text(String text);

    void imageId(String id);
}
