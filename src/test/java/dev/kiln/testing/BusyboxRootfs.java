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
            "pwd", "touch", "unshare", "chroot", "wc", "true", "false", "ip", "mount", "ps", "tty", "head", "tr",
            "httpd", "nc", "printf", "readlink", "df");
    /** A regular file with no x bit: running it must fail with Docker's 126. */
    public static final String NOT_EXECUTABLE = "/notexec";
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
        Path notExecutable = rootfs.resolve(NOT_EXECUTABLE.substring(1));
        Files.writeString(notExecutable, "#!/bin/sh\necho not executable\n");
        Files.setPosixFilePermissions(notExecutable, PosixFilePermissions.fromString("rw-r--r--"));
        return rootfs;
    }

    /**
     * The same tree as a root filesystem tarball in {@code work} (for {@code kiln import}), as a user would make
     * one; {@code extra} files (relative path → content) are added first, e.g. a web root.
     */
    public static Path tarball(Path work, java.util.Map<String, String> extra) throws IOException {
        Path rootfs = create(work.resolve("busybox-rootfs"));
        for (var e : extra.entrySet()) {
            Path file = rootfs.resolve(e.getKey());
            Files.createDirectories(file.getParent());
            Files.writeString(file, e.getValue());
        }
        Path tar = work.resolve("busybox-rootfs.tar");
        Command.run("tar", "--numeric-owner", "--owner=0", "--group=0", "-C", rootfs.toString(), "-cf",
                tar.toString(), ".");
        return tar;
    }
}
