package dev.kiln.engine.process;

import dev.kiln.testing.BusyboxRootfs;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.kiln.KilnException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code -u} resolution against the image's passwd and group, including images built to read host files. */
class ImageUserTest {

    /** What a hostile image would like kiln to read: a host file with a user the image does not have. */
    private static final String HOST_SECRET = "evil:x:0:0:host secret:/:/bin/sh\n";

    @TempDir
    Path work;

    private Path rootfs;
    private Path hostSecret;

    @BeforeEach
    void setUp() throws IOException {
        rootfs = Files.createDirectories(work.resolve("rootfs"));
        Files.createDirectories(rootfs.resolve("etc"));
        hostSecret = work.resolve("host-shadow");
        Files.writeString(hostSecret, HOST_SECRET);
    }

    private void standardFiles() throws IOException {
        Files.writeString(rootfs.resolve("etc/passwd"), BusyboxRootfs.PASSWD);
        Files.writeString(rootfs.resolve("etc/group"), BusyboxRootfs.GROUP);
    }

    @Test
    void nameResolvesWithMembershipGroups() throws IOException {
        standardFiles();
        assertThat(ImageUser.resolve(rootfs, "app")).isEqualTo(new ImageUser(1000, 1000, List.of(1000, 2000),
                "/home/app"));
    }

    @Test
    void emptySpecIsRoot() throws IOException {
        standardFiles();
        assertThat(ImageUser.resolve(rootfs, "")).isEqualTo(new ImageUser(0, 0, List.of(0), "/root"));
    }

    @Test
    void numericUidInPasswdTakesItsEntry() throws IOException {
        standardFiles();
        assertThat(ImageUser.resolve(rootfs, "1000")).isEqualTo(new ImageUser(1000, 1000, List.of(1000, 2000),
                "/home/app"));
    }

    @Test
    void numericUidNotInPasswdIsFineWithGidZero() throws IOException {
        standardFiles();
        assertThat(ImageUser.resolve(rootfs, "4242")).isEqualTo(new ImageUser(4242, 0, List.of(0), "/"));
    }

    @Test
    void explicitGroupByNameOrIdAndNoMembershipGroups() throws IOException {
        standardFiles();
        assertThat(ImageUser.resolve(rootfs, "app:extra")).isEqualTo(new ImageUser(1000, 2000, List.of(2000),
                "/home/app"));
        assertThat(ImageUser.resolve(rootfs, "1000:2000")).isEqualTo(new ImageUser(1000, 2000, List.of(2000),
                "/home/app"));
        assertThat(ImageUser.resolve(rootfs, "4242:777")).isEqualTo(new ImageUser(4242, 777, List.of(777), "/"));
    }

    @Test
    void unknownNameIsDockersError() throws IOException {
        standardFiles();
        assertThatThrownBy(() -> ImageUser.resolve(rootfs, "nobody"))
                .isInstanceOf(KilnException.class)
                .hasMessage("unable to find user nobody: no matching entries in passwd file")
                .extracting(e -> ((KilnException) e).kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
        assertThatThrownBy(() -> ImageUser.resolve(rootfs, "app:nogroup"))
                .hasMessage("unable to find group nogroup: no matching entries in group file");
    }

    @Test
    void missingPasswdMeansOnlyNumericUsersWork() {
        assertThat(ImageUser.resolve(rootfs, "")).isEqualTo(new ImageUser(0, 0, List.of(0), "/"));
        assertThat(ImageUser.resolve(rootfs, "1000:1000")).isEqualTo(new ImageUser(1000, 1000, List.of(1000), "/"));
        assertThatThrownBy(() -> ImageUser.resolve(rootfs, "app"))
                .hasMessage("unable to find user app: no matching entries in passwd file");
    }

    @Test
    void outOfRangeIdIsRejected() throws IOException {
        standardFiles();
        assertThatThrownBy(() -> ImageUser.resolve(rootfs, "99999999999"))
                .hasMessageContaining("uids and gids must be in range 0-2147483647");
    }

    // ---- hostile images: none of these may read the host's file ----

    @Test
    void absoluteSymlinkOutOfTheRootfsIsReRootedNotFollowed() throws IOException {
        Files.createSymbolicLink(rootfs.resolve("etc/passwd"), hostSecret);
        assertThatThrownBy(() -> ImageUser.resolve(rootfs, "evil"))
                .hasMessage("unable to find user evil: no matching entries in passwd file");
        assertThat(RootfsFile.read(rootfs, "/etc/passwd")).isEmpty();
    }

    @Test
    void dotDotSymlinkStopsAtTheRootfs() throws IOException {
        Path relative = rootfs.resolve("etc").relativize(hostSecret); // ../../host-shadow
        Files.createSymbolicLink(rootfs.resolve("etc/passwd"), Path.of("../../../../../..").resolve(relative));
        assertThat(RootfsFile.read(rootfs, "/etc/passwd")).isEmpty();
        Files.delete(rootfs.resolve("etc/passwd"));
        Files.createSymbolicLink(rootfs.resolve("etc/passwd"), relative);
        assertThat(RootfsFile.read(rootfs, "/etc/passwd")).isEmpty();
        assertThatThrownBy(() -> ImageUser.resolve(rootfs, "evil")).isInstanceOf(KilnException.class);
    }

    @Test
    void symlinkedEtcDirectoryOutOfTheRootfsIsReRooted() throws IOException {
        Path hostEtc = Files.createDirectories(work.resolve("host-etc"));
        Files.writeString(hostEtc.resolve("passwd"), HOST_SECRET);
        Files.delete(rootfs.resolve("etc"));
        Files.createSymbolicLink(rootfs.resolve("etc"), hostEtc);
        assertThat(RootfsFile.read(rootfs, "/etc/passwd")).isEmpty();
        assertThatThrownBy(() -> ImageUser.resolve(rootfs, "evil")).isInstanceOf(KilnException.class);
    }

    @Test
    void symlinksInsideTheImageAreFollowedWithinIt() throws IOException {
        Files.createDirectories(rootfs.resolve("usr/share/base"));
        Files.writeString(rootfs.resolve("usr/share/base/passwd"), BusyboxRootfs.PASSWD);
        Files.createSymbolicLink(rootfs.resolve("etc/passwd"), Path.of("/usr/share/base/passwd"));
        assertThat(ImageUser.resolve(rootfs, "app").uid()).isEqualTo(1000);
    }

    @Test
    void symlinkLoopIsRefused() throws IOException {
        Files.createSymbolicLink(rootfs.resolve("etc/passwd"), Path.of("/etc/passwd"));
        assertThatThrownBy(() -> RootfsFile.read(rootfs, "/etc/passwd"))
                .hasMessageContaining("too many symbolic links");
        Files.delete(rootfs.resolve("etc/passwd")); // a link to the host's /etc: keep JUnit's cleanup from warning
    }

    @Test
    void nonRegularAndOversizedFilesAreRefused() throws Exception {
        Files.createDirectories(rootfs.resolve("etc/passwd"));
        assertThatThrownBy(() -> RootfsFile.read(rootfs, "/etc/passwd")).hasMessageContaining("not a regular file");
        Files.delete(rootfs.resolve("etc/passwd"));
        new ProcessBuilder("mkfifo", rootfs.resolve("etc/passwd").toString()).start().waitFor();
        assertThatThrownBy(() -> RootfsFile.read(rootfs, "/etc/passwd")).hasMessageContaining("not a regular file");
        Files.delete(rootfs.resolve("etc/passwd"));
        Files.write(rootfs.resolve("etc/passwd"), new byte[(int) RootfsFile.MAX_BYTES + 1]);
        assertThatThrownBy(() -> RootfsFile.read(rootfs, "/etc/passwd")).hasMessageContaining("larger than 1 MiB");
    }
}
