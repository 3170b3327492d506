package dev.kiln.isolation.shim;

import dev.kiln.KilnException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;

/** Finds the kiln-shim executable. */
public final class ShimBinary {
    static final String PROPERTY = "kiln.shim";
    static final String ENV = "KILN_SHIM";
    static final Path SYSTEM = Path.of("/usr/lib/kiln/kiln-shim");

    private ShimBinary() {}

    /**
     * The system property {@code kiln.shim}, else the environment variable {@code KILN_SHIM}, else
     * {@code native/kiln-shim} next to kiln's jar (target/native/kiln-shim for target/kiln-0.1.0.jar, and for
     * target/classes while testing), else /usr/lib/kiln/kiln-shim.
     */
    public static Path locate() {
        String configured = System.getProperty(PROPERTY);
        String source = "-D" + PROPERTY;
        if (configured == null || configured.isBlank()) {
            configured = System.getenv(ENV);
            source = ENV;
        }
        if (configured != null && !configured.isBlank()) {
            Path path = Path.of(configured);
            if (executable(path)) return path;
            throw KilnException.notFound("kiln-shim not found at " + path + " (from " + source + "): run scripts/setup");
        }
        Path bundled = besideCode();
        if (bundled != null && executable(bundled)) return bundled;
        if (executable(SYSTEM)) return SYSTEM;
        throw KilnException.notFound("kiln-shim not found"
                + (bundled == null ? "" : " at " + bundled) + " or " + SYSTEM + ": run scripts/setup");
    }

    /** native/kiln-shim in the directory holding kiln's jar (or its classes directory). */
    static Path besideCode() {
        CodeSource code = ShimBinary.class.getProtectionDomain().getCodeSource();
        if (code == null || code.getLocation() == null) return null;
        try {
            Path location = Path.of(code.getLocation().toURI());
            Path parent = location.toAbsolutePath().getParent();
            return parent == null ? null : parent.resolve("native").resolve("kiln-shim");
        } catch (URISyntaxException | IllegalArgumentException e) {
            return null;
        }
    }

    private static boolean executable(Path path) {
        return Files.isRegularFile(path) && Files.isExecutable(path);
    }
}
