package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.isolation.shim.ShimBinary;

import java.nio.file.Files;
import java.nio.file.Path;

/** Finds kiln-init, the guest's PID 1 (a static binary run inside the VM, never on the host). */
final class NativeBinary {
    static final String PROPERTY = "kiln.init";
    static final String ENV = "KILN_INIT";
    static final Path SYSTEM = Path.of("/usr/lib/kiln/kiln-init");

    private NativeBinary() {
    }

    /** -Dkiln.init, else $KILN_INIT, else kiln-init next to kiln-shim (target/native while testing), else /usr/lib/kiln. */
    static Path init() {
        String configured = System.getProperty(PROPERTY);
        if (configured == null || configured.isBlank()) configured = System.getenv(ENV);
        if (configured != null && !configured.isBlank()) {
            Path p = Path.of(configured);
            if (Files.isRegularFile(p)) return p;
            throw KilnException.notFound("kiln-init not found at " + p + ": run scripts/setup");
        }
        Path besideShim = ShimBinary.locate().toAbsolutePath().resolveSibling("kiln-init");
        if (Files.isRegularFile(besideShim)) return besideShim;
        if (Files.isRegularFile(SYSTEM)) return SYSTEM;
        throw KilnException.notFound("kiln-init not found at " + besideShim + " or " + SYSTEM + ": run scripts/setup");
    }
}
