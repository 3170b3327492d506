package dev.kiln.reliability;

import dev.kiln.testing.Command;
import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

/**
 * A busybox image made the way a user would: a root filesystem tarball of the host's static busybox (applet links,
 * passwd, group, a non-executable file) imported with {@code kiln import}. Offline, no registry.
 */
final class BusyboxImage {
    static final String REF = "reliability/busybox:1";
    static final Path BUSYBOX = Path.of("/usr/bin/busybox");
    static final List<String> APPLETS = List.of("sh", "echo", "true", "false", "cat", "ls", "sleep", "ps", "id");
    /** A regular file without any x bit. */
    static final String NOT_EXECUTABLE = "/etc/motd";

    private BusyboxImage() {
    }

    /** Imports the image into the daemon behind {@code kiln} and returns its reference. */
    static String importInto(KilnCli kiln, Path work) {
        Assumptions.assumeTrue(Files.isExecutable(BUSYBOX), BUSYBOX + " missing (install busybox-static)");
        Path rootfs = work.resolve("busybox-rootfs");
        Path tar = work.resolve("busybox-rootfs.tar");
        try {
            Files.createDirectories(rootfs.resolve("bin"));
            Files.copy(BUSYBOX, rootfs.resolve("bin/busybox"), StandardCopyOption.COPY_ATTRIBUTES);
            for (String applet : APPLETS) {
                Files.createSymbolicLink(rootfs.resolve("bin").resolve(applet), Path.of("busybox"));
            }
            Files.createDirectories(rootfs.resolve("etc"));
            Files.writeString(rootfs.resolve("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
            Files.writeString(rootfs.resolve("etc/group"), "root:x:0:\n");
            Files.writeString(rootfs.resolve(NOT_EXECUTABLE.substring(1)), "#!/bin/sh\necho not executable\n");
            Files.setPosixFilePermissions(rootfs.resolve(NOT_EXECUTABLE.substring(1)),
                    PosixFilePermissions.fromString("rw-r--r--"));
            Files.createDirectories(rootfs.resolve("root"));
            Files.setPosixFilePermissions(Files.createDirectories(rootfs.resolve("tmp")),
                    PosixFilePermissions.fromString("rwxrwxrwx"));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot stage the busybox root filesystem", e);
        }
        Command.run("tar", "--numeric-owner", "--owner=0", "--group=0", "-C", rootfs.toString(), "-cf",
                tar.toString(), ".");
        kiln.ok("import", tar.toString(), REF);
        return REF;
    }
}
