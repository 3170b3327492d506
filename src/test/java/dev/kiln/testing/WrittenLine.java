package dev.kiln.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Whether a sandbox has finished writing a line to a host file. A shell's {@code echo x > f} creates {@code f}
 * before it writes to it, so a test that waits only for the file to exist can read it empty.
 */
public final class WrittenLine {
    private WrittenLine() {}

    /** True once {@code file} exists and ends with a newline. */
    public static boolean in(Path file) {
        try {
            return Files.readString(file).endsWith("\n");
        } catch (IOException absentOrUnreadable) {
            return false;
        }
    }
}
