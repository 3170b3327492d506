package dev.kiln.testing;

import dev.kiln.rootfs.Mounts;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A test's mount point ({@code @RegisterExtension}): the test is skipped without root (mounts need it), and whatever
 * the test left mounted at the path it named with {@link #at} is unmounted after it, pass or fail.
 */
public final class MountPoint implements BeforeEachCallback, AfterEachCallback {
    private Path target;

    /** {@code path} is where the test mounts; returned for chaining. */
    public Path at(Path path) {
        target = path;
        return path;
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "mounts need root");
    }

    @Override
    public void afterEach(ExtensionContext context) {
        if (target != null) {
            Mounts.unmount(target, false);
            target = null;
        }
    }
}
