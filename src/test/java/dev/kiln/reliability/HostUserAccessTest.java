package dev.kiln.reliability;

import dev.kiln.testing.BusyboxRootfs;
import dev.kiln.testing.Command;
import dev.kiln.testing.UnprivilegedUser;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A local user who is neither root nor in the kiln group, against what kiln keeps on the host (issue 11, items 1 and
 * 2): a sandbox that makes a setuid-root binary and an image that carries one must give them no way to root, and
 * the database, logs and configs holding a sandbox's secrets must be unreadable to them. kilnd runs as its own
 * process on roots whose parent is 0755, as /var/lib and /run are, so only kiln's own modes keep the user out.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class HostUserAccessTest extends DaemonProcessTest {

    private static final String SECRET = "hunter2-" + Long.toHexString(System.nanoTime());
    private static final String SETUID_IMAGE = "reliability/setuid:1";
    private static final Set<PosixFilePermission> OWNER_RW = PosixFilePermissions.fromString("rw-------");
    private static final Set<PosixFilePermission> OWNER_RWX = PosixFilePermissions.fromString("rwx------");

    @Test
    void setuidFilesKilnKeepsAreOutOfAnUnprivilegedUsersReach() throws Exception {
        openToOthers(tmp);
        String image = importSetuidImage();
        String id = kiln.ok("run", "-d", "--name", "holder", "-e", "DB_PASSWORD=" + SECRET, image, "sh", "-c",
                "cp /bin/busybox /tmp/busybox-suid && chmod 4755 /tmp/busybox-suid && echo \"ready $DB_PASSWORD\""
                        + " && sleep 300").out().strip();
        Path sandbox = root.resolve("sandboxes").resolve(id.substring(0, 12));
        awaitContent(sandbox.resolve("log.json"), "ready " + SECRET);
        Path mount = Path.of(kiln.ok("image", "mount", image).out().strip());
        try {
            // as root: the setuid-root files are there (the user's empty finds below are not for want of them)
            List<String> setuid = Command.run("find", root.toString(), runRoot.toString(), "-perm", "-4000",
                    "-type", "f").lines().toList();
            assertThat(setuid).as("setuid files under the roots, found as root")
                    .anyMatch(p -> p.startsWith(sandbox + "/upper/") && p.endsWith("/tmp/busybox-suid"))
                    .anyMatch(p -> p.startsWith(sandbox + "/rootfs/") && p.endsWith("/tmp/busybox-suid"))
                    .anyMatch(p -> p.startsWith(root.resolve("rootfs") + "/") && p.endsWith("/bin/busybox-suid"))
                    .anyMatch(p -> p.startsWith(mount + "/") && p.endsWith("/bin/busybox-suid"));

            try (UnprivilegedUser user = UnprivilegedUser.create()) {
                UnprivilegedUser.Result found = user.sh("find \"$@\" -perm -4000", root, runRoot);
                assertThat(found.out()).as("find -perm -4000 as " + user.name() + ": " + found).isEmpty();
                UnprivilegedUser.Result readable = user.sh("find \"$@\" -readable", root, runRoot);
                assertThat(readable.out()).as("anything readable under the roots for " + user.name() + ": "
                        + readable).isEmpty();
                for (String path : setuid) {
                    UnprivilegedUser.Result run = user.sh("\"$1\" id -u", path);
                    assertThat(run.exitCode()).as("exec of " + path + " as " + user.name() + ": " + run)
                            .isEqualTo(126);
                    assertThat(run.err()).as(path).contains("Permission denied");
                }
                for (Path p : List.of(root, root.resolve("kiln.db"), root.resolve("kiln.db-wal"), sandbox,
                        sandbox.resolve("config.json"), sandbox.resolve("log.json"), sandbox.resolve("main"),
                        sandbox.resolve("upper/tmp"), root.resolve("rootfs"), runRoot, mount)) {
                    UnprivilegedUser.Result r = user.sh("ls -a \"$1\" || cat \"$1\"", p);
                    assertThat(r.exitCode()).as("ls/cat " + p + " as " + user.name() + ": " + r).isNotZero();
                    assertThat(r.out()).as(p.toString()).isEmpty();
                }
            }
            assertThat(Command.run("findmnt", "-n", "-o", "OPTIONS", mount.toString()).strip().split(","))
                    .as("kiln image mount's options").contains("nosuid", "nodev");
        } finally {
            kiln.kiln("image", "unmount", image);
        }
        kiln.ok("rm", "-f", "holder");
    }

    @Test
    void theDatabaseKeepsASandboxsSecretFromOtherUsers() throws Exception {
        openToOthers(tmp);
        String image = busybox();
        kiln.ok("run", "-d", "--name", "secretive", "-e", "DB_PASSWORD=" + SECRET, image, "sleep", "300");
        Path db = root.resolve("kiln.db");
        List<Path> files = List.of(db, root.resolve("kiln.db-wal"), root.resolve("kiln.db-shm"));
        for (Path f : files) {
            assertThat(Files.getPosixFilePermissions(f)).as(f + "'s mode").isEqualTo(OWNER_RW);
        }
        // as root: the secret is in them (SQLite's WAL holds the newest pages until a checkpoint)
        assertThat(Command.run("grep", "-a", "-l", "-F", SECRET, db.toString(), files.get(1).toString()))
                .as("files holding the secret").isNotBlank();
        try (UnprivilegedUser user = UnprivilegedUser.create()) {
            for (Path f : files) {
                UnprivilegedUser.Result r = user.sh("cat \"$1\"", f);
                assertThat(r.exitCode()).as("cat " + f + " as " + user.name() + ": " + r).isNotZero();
            }
            UnprivilegedUser.Result grep = user.sh("grep -r -a -l -F \"$1\" \"$2\" \"$3\"", SECRET, root, runRoot);
            assertThat(grep.out()).as("files with the secret that " + user.name() + " can read: " + grep).isEmpty();
        }
        kiln.ok("rm", "-f", "secretive");
    }

    /** The harness starts kilnd under umask 077 (KilndProcess): a non-root workload must still read its own root. */
    @Test
    void aNonRootWorkloadRunsWhateverUmaskKilndWasStartedWith() throws Exception {
        String status = Files.readString(Path.of("/proc", Long.toString(kilnd.pid()), "status"));
        assertThat(status).as("kilnd's own mask").contains("Umask:\t0022");
        String image = busybox();
        KilnCli.Result r = kiln.process(java.time.Duration.ofSeconds(60), "run", "--rm", "--user", "1000", image,
                "sh", "-c", "ls /bin | grep -c . && cat /etc/hosts");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).as("a uid-1000 workload lists /bin and reads /etc/hosts").contains("localhost");
    }

    @Test
    void anOlderKilnsOpenTreeIsTightenedWhenKilndStarts() throws Exception {
        openToOthers(tmp);
        String image = busybox();
        kiln.ok("run", "--name", "finished", "-e", "DB_PASSWORD=" + SECRET, image, "true");
        kilnd.kill9(); // as a crash: kiln.db-wal and -shm stay
        assertThat(Leftovers.mountsUnder(root)).as("mounts under the root with no sandbox running").isEmpty();
        // what kiln 0.1 left: directories 0755, files 0644
        Command.run("chmod", "-R", "go+rX", root.toString(), runRoot.toString());
        try (UnprivilegedUser user = UnprivilegedUser.create()) {
            assertThat(user.sh("cat \"$1\" \"$2\"", root.resolve("kiln.db"), root.resolve("kiln.db-wal")).out())
                    .as("the old tree, before kilnd starts").contains(SECRET);

            kilnd.restart();
            assertThat(Files.getPosixFilePermissions(root)).as("the root's mode").isEqualTo(OWNER_RWX);
            assertThat(Files.getPosixFilePermissions(runRoot)).as("the run root's mode (0710 with a kiln group)")
                    .isSubsetOf(PosixFilePermissions.fromString("rwx--x---"));
            for (Path top : List.of(root, runRoot)) {
                try (Stream<Path> s = Files.list(top)) {
                    for (Path dir : s.filter(Files::isDirectory).toList()) {
                        assertThat(Files.getPosixFilePermissions(dir)).as(dir + "'s mode").isEqualTo(OWNER_RWX);
                    }
                }
            }
            for (String name : List.of("kiln.db", "kiln.db-wal", "kiln.db-shm")) {
                assertThat(Files.getPosixFilePermissions(root.resolve(name))).as(name + "'s mode").isEqualTo(OWNER_RW);
            }
            UnprivilegedUser.Result readable = user.sh("find \"$@\" -readable", root, runRoot);
            assertThat(readable.out()).as("readable for " + user.name() + " after the start: " + readable).isEmpty();
        }
        kiln.ok("rm", "finished");
    }

    /** The test's own directory 0755, as /var/lib and /run are (JUnit makes it 0700, which would hide everything). */
    private static void openToOthers(Path dir) throws IOException {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    /** The busybox image plus {@code /bin/busybox-suid}, a root-owned 4755 copy of busybox, imported. */
    private String importSetuidImage() throws IOException {
        Path rootfs = BusyboxRootfs.create(tmp.resolve("setuid-rootfs"));
        Path suid = rootfs.resolve("bin/busybox-suid");
        Files.copy(rootfs.resolve("bin/busybox"), suid, StandardCopyOption.COPY_ATTRIBUTES);
        Files.setAttribute(suid, "unix:mode", 04755);
        Path tar = tmp.resolve("setuid-rootfs.tar");
        Command.run("tar", "--numeric-owner", "--owner=0", "--group=0", "-C", rootfs.toString(), "-cf",
                tar.toString(), ".");
        kiln.ok("import", tar.toString(), SETUID_IMAGE);
        return SETUID_IMAGE;
    }

    private static void awaitContent(Path file, String text) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!(Files.exists(file) && Files.readString(file).contains(text))) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(file + " never held \"" + text + "\"");
            }
            Thread.sleep(100);
        }
    }
}
