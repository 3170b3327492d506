package dev.kiln.reliability;

import dev.kiln.testing.Command;
import dev.kiln.testing.KilndProcess;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

/**
 * A kilnd of its own process per test, on a private root, driven through the CLI; afterwards every sandbox, mount,
 * runtime state and process it left is found and removed, pass or fail.
 */
abstract class DaemonProcessTest {

    @TempDir
    Path tmp;
    Path root;
    Path runRoot;
    KilndProcess kilnd;
    KilnCli kiln;

    @BeforeEach
    void startDaemon() {
        Command.require("runc", "runc");
        root = tmp.resolve("root");
        runRoot = tmp.resolve("run");
        kilnd = KilndProcess.start(root, runRoot);
        kiln = new KilnCli(kilnd);
    }

    @AfterEach
    void cleanUp() {
        stop(kiln, kilnd, root, runRoot);
    }

    /** Imports the busybox test image into the daemon and returns its name. */
    String busybox() {
        return BusyboxImage.importInto(kiln, tmp);
    }

    /** Closes the CLI and the daemon (either may be null: a start that failed), then removes what is left. */
    static void stop(KilnCli kiln, KilndProcess kilnd, Path root, Path runRoot) {
        try {
            if (kiln != null) {
                kiln.close();
            }
        } finally {
            if (kilnd != null) {
                kilnd.close();
            }
            Leftovers.cleanUp(root, runRoot);
        }
    }
}
