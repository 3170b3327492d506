package dev.kiln.reliability;

import dev.kiln.testing.BusyboxRootfs;


import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/**
 * A busybox image made the way a user would: a root filesystem tarball of the host's static busybox (applet links,
 * passwd, group, a non-executable file) imported with {@code kiln import}. Offline, no registry.
 */
final class BusyboxImage {
    static final String REF = "reliability/busybox:1";
    /** A regular file without any x bit. */
    static final String NOT_EXECUTABLE = BusyboxRootfs.NOT_EXECUTABLE;

    private BusyboxImage() {
    }

    /** Imports the image into the daemon behind {@code kiln} and returns its reference. */
    static String importInto(KilnCli kiln, Path work) {
        Path tar;
        try {
            tar = BusyboxRootfs.tarball(work, java.util.Map.of());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot stage the busybox root filesystem", e);
        }
        kiln.ok("import", tar.toString(), REF);
        return REF;
    }
}
