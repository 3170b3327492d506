package dev.kiln.testing;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A Debian 12 root filesystem with a C compiler (minbase + gcc + libc6-dev, ~300 MB), made once by scripts/setup
 * with mmdebstrap from Debian's mirror and kept outside the repository; the build tests and bench/build import it.
 * No registry image with a compiler is reachable here, and busybox has none.
 */
public final class DebianFixture {
    /** Where scripts/setup writes it (keep in step with FIXTURE there). */
    public static final Path TARBALL = Path.of("/var/cache/kiln/fixtures/debian-bookworm-gcc.tar");

    private DebianFixture() {
    }

    /** The fixture's tarball; a missing one is a set-up step not run, said as such. */
    public static Path tarball() {
        if (!Files.isRegularFile(TARBALL)) {
            throw new IllegalStateException(TARBALL + " is missing: run scripts/setup (it makes the Debian fixture "
                    + "with mmdebstrap)");
        }
        return TARBALL;
    }
}
