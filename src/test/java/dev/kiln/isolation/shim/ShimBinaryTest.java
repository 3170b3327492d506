package dev.kiln.isolation.shim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.kiln.KilnException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.parallel.ResourceLock;

@ResourceLock("kiln.shim")
class ShimBinaryTest {

    @Test
    void bundledBinarySitsInNativeNextToTheJarOrClassesDirectory() {
        // tests run from target/classes, so this is target/native/kiln-shim, as for target/kiln-0.1.0.jar
        assertThat(ShimBinary.besideCode()).isEqualTo(Path.of("target/native/kiln-shim").toAbsolutePath());
    }

    @Test
    void theSystemPropertyWinsAndAMissingFileSaysWhatToDo() {
        String before = System.getProperty(ShimBinary.PROPERTY);
        try {
            System.setProperty(ShimBinary.PROPERTY, "/nonexistent/kiln-shim");
            assertThatThrownBy(ShimBinary::locate)
                    .isInstanceOf(KilnException.class)
                    .hasMessage("kiln-shim not found at /nonexistent/kiln-shim (from -Dkiln.shim): run scripts/setup");
            Path built = ShimFixture.binary();
            System.setProperty(ShimBinary.PROPERTY, built.toString());
            assertThat(ShimBinary.locate()).isEqualTo(built);
        } finally {
            if (before == null) System.clearProperty(ShimBinary.PROPERTY);
            else System.setProperty(ShimBinary.PROPERTY, before);
        }
    }
}
