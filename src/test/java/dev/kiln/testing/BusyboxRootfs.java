package dev.kiln.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/** A minimal root filesystem for runtime tests: static busybox with applet links, passwd and group. */
public final class BusyboxRootfs {
    static final Path BUSYBOX = Path.of("/usr/bin/busybox");
    static final List<String> APPLETS = List.of("sh", "id", "cat", "ls", "echo", "sleep", "grep", "hostname", "env",
            "pwd", "touch", "unshare", "chroot", "wc", "true", "ip", "mount");
    public static final String PASSWD = """
            root:x:0:0:root:/root:/bin/sh
            app:x:1000:1000:app:/home/app:/bin/sh
            """;
    public static final String GROUP = """
            root:x:0:
            app:x:1000:
            extra:x:2000:app
            """;

    private BusyboxRootfs() {
    }

    /** Creates {@code rootfs} (skipping the test when the static busybox is missing). */
    public static Path create(Path rootfs) throws IOException {
        Assumptions.assumeTrue(Files.isExecutable(BUSYBOX), "/usr/bin/busybox missing (install busybox-static)");
        Files.createDirectories(rootfs.resolve("bin"));
        Files.copy(BUSYBOX, rootfs.resolve("bin/busybox"), StandardCopyOption.COPY_ATTRIBUTES);
        for (String applet : APPLETS) {
            Files.createSymbolicLink(rootfs.resolve("bin").resolve(applet), Path.of("busybox"));
        }
        Files.createDirectories(rootfs.resolve("etc"));
        Files.writeString(rootfs.resolve("etc/passwd"), PASSWD);
        Files.writeString(rootfs.resolve("etc/group"), GROUP);
        Files.createDirectories(rootfs.resolve("home/app"));
        Files.createDirectories(rootfs.resolve("root"));
        Path tmp = Files.createDirectories(rootfs.resolve("tmp"));
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxrwxrwx"));
        return rootfs;
    }
}
