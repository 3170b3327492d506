package dev.kiln.reliability;

import org.junit.jupiter.api.extension.AnnotatedElementContext;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.io.TempDirFactory;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;

/**
 * A @TempDir with a short path ({@code /tmp/kr-XXXXXX}): a unix socket path holds at most 107 bytes, and a sandbox's
 * exec socket sits ~80 bytes below the root ({@code sandboxes/ID12/execs/ID32/shim/attach.sock}), so JUnit's default
 * {@code /tmp/junit-<19 digits>} root is too long for exec (see {@code LongRootTest}).
 */
public final class ShortTempDir implements TempDirFactory {
    private static final SecureRandom RANDOM = new SecureRandom();

    @Override
    public Path createTempDirectory(AnnotatedElementContext element, ExtensionContext extension) throws IOException {
        while (true) {
            StringBuilder name = new StringBuilder("kr-");
            for (int i = 0; i < 6; i++) {
                name.append(Character.forDigit(RANDOM.nextInt(36), 36));
            }
            try {
                return Files.createDirectory(Path.of("/tmp", name.toString()));
            } catch (FileAlreadyExistsException taken) {
                // try another name
            }
        }
    }
}
