package dev.kiln.rootfs;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

class TrashTest {
    @TempDir
    Path tmp;

    /** kilnd killed before its pass ended: the next kilnd empties the trash when it opens it, with no removal. */
    @Test
    void whatAKilledDaemonLeftInTheTrashGoesWhenTheNextOneOpensIt() throws Exception {
        Path outside = Files.createDirectories(tmp.resolve("outside"));
        Files.writeString(outside.resolve("keep"), "keep\n");
        Path trashDir = tmp.resolve("trash");
        Path left = Files.createDirectories(trashDir.resolve("0123456789ab.1.1/upper/etc"));
        Files.writeString(left.resolve("hosts"), "x");
        Files.createSymbolicLink(left.resolve("link"), outside); // a sandbox's link: unlinked, never entered

        Trash.open(trashDir);
        awaitEmpty(trashDir);
        assertThat(Files.readString(outside.resolve("keep"))).isEqualTo("keep\n");
    }

    @Test
    void aDiscardedTreeLeavesItsPathAtOnceAndIsDeletedAfterWithWhatAnEarlierDaemonLeftThere() throws Exception {
        Path outside = Files.createDirectories(tmp.resolve("outside"));
        Files.writeString(outside.resolve("keep"), "keep\n");
        Path trashDir = tmp.resolve("trash");
        Path left = Files.createDirectories(trashDir.resolve("0123456789ab.1.1/upper"));
        Files.writeString(left.resolve("f"), "left by a kilnd that was killed");
        Path tree = Files.createDirectories(tmp.resolve("sandboxes/abcdef012345/upper/etc"));
        Files.writeString(tree.resolve("hosts"), "x");
        Files.createSymbolicLink(tmp.resolve("sandboxes/abcdef012345/link"), outside);

        Trash.open(trashDir).discard(tmp.resolve("sandboxes/abcdef012345"));
        assertThat(tmp.resolve("sandboxes/abcdef012345")).doesNotExist(); // at once, not after the delete

        awaitEmpty(trashDir);
        assertThat(Files.readString(outside.resolve("keep"))).isEqualTo("keep\n");
        assertThat(tmp.resolve("sandboxes")).isEmptyDirectory();

        Trash.open(trashDir).discard(tmp.resolve("sandboxes/gone")); // nothing there: nothing to do
        assertThat(entries(trashDir)).isZero();
    }

    /**
     * A removed sandbox's directory that still holds a mount (a copy's view of a VM's disk a killed kilnd left): the
     * mount is detached, what it holds is not deleted, and the directory goes (review of 2026-12-08: the trash walked
     * into the view, and a hung FUSE server behind one held every later delete).
     */
    @Test
    void aMountLeftInADiscardedTreeIsDetachedNotEmptied() throws Exception {
        Path volume = Files.createDirectories(tmp.resolve("volume"));
        Files.writeString(volume.resolve("data"), "the user's\n");
        // a space in the path: mountinfo writes it \\040
        Path view = Files.createDirectories(tmp.resolve("sandboxes/abcdef012345/disk view"));
        TestMounts.mount("--bind", volume, view);
        try {
            Path trashDir = tmp.resolve("trash");
            Trash.open(trashDir).discard(tmp.resolve("sandboxes/abcdef012345"));
            awaitEmpty(trashDir);
            assertThat(Mounts.under(tmp)).isEmpty();
            assertThat(volume.resolve("data")).hasContent("the user's");
        } finally {
            TestMounts.detachAll(tmp);
        }
    }

    /**
     * One mount elsewhere whose path is not valid UTF-8 (a root's or an automounter's) made all of mountinfo
     * unreadable, so no mount was seen and the one in the removed sandbox stayed (the sixth review's F2).
     */
    @Test
    void aMountWhosePathIsNotUtf8ElsewhereHidesNoOtherMount() throws Exception {
        Path odd = Files.createDirectories(tmp.resolve("odd"));
        Path volume = Files.createDirectories(tmp.resolve("volume"));
        Path view = Files.createDirectories(tmp.resolve("sandboxes/abcdef012345/view"));
        try {
            assertThat(new ProcessBuilder("sh", "-c", "mkdir \"$1/$(printf '\\377')\" && mount -t tmpfs none \"$1\"/*",
                    "sh", odd.toString()).inheritIO().start().waitFor()).isZero();
            TestMounts.mount("--bind", volume, view);
            assertThat(Mounts.under(tmp)).contains(view);
            Path trashDir = tmp.resolve("trash");
            Trash.open(trashDir).discard(tmp.resolve("sandboxes/abcdef012345"));
            awaitEmpty(trashDir);
            assertThat(Mounts.isMounted(view)).isFalse();
        } finally {
            new ProcessBuilder("sh", "-c", "umount -l \"$1\"/*", "sh", odd.toString()).start().waitFor();
            TestMounts.detachAll(tmp);
        }
    }

    /** A removed sandbox whose directory is itself a mount cannot be moved: it is refused, not emptied in place. */
    @Test
    void aTreeThatIsItselfAMountIsRefusedNotEmptied() throws Exception {
        Path users = Files.createDirectories(tmp.resolve("users-data"));
        Files.writeString(users.resolve("precious"), "kept");
        Path tree = Files.createDirectories(tmp.resolve("sandboxes/abcdef012345"));
        TestMounts.mount("--bind", users, tree);
        try {
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> Trash.open(tmp.resolve("trash")).discard(tree))
                    .hasMessageContaining("is another mount");
            assertThat(users.resolve("precious")).hasContent("kept");
        } finally {
            TestMounts.detachAll(tmp);
        }
    }

    /**
     * An entry that cannot be deleted (an immutable file) is left until the next kilnd opens the trash: every later
     * removal's pass walked it again, which a sandbox with many such files made cost seconds each (the sixth review's
     * F3). What else it held is gone at once, and the next open deletes it once it can be.
     */
    @Test
    void anEntryThatCannotBeDeletedIsLeftUntilTheNextOpen() throws Exception {
        Path trashDir = tmp.resolve("trash");
        Path entry = Files.createDirectories(trashDir.resolve("0123456789ab.1.1"));
        Path immutable = Files.writeString(entry.resolve("immutable"), "x");
        Files.writeString(entry.resolve("other"), "x");
        assertThat(new ProcessBuilder("chattr", "+i", immutable.toString()).inheritIO().start().waitFor()).isZero();
        try {
            Trash trash = Trash.open(trashDir);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (System.nanoTime() < deadline && Files.exists(entry.resolve("other"))) Thread.sleep(20);
            assertThat(entry.resolve("other")).doesNotExist();

            Path marker = Files.writeString(entry.resolve("written-after-the-pass"), "x");
            Files.createDirectories(tmp.resolve("sandboxes/abcdef012345"));
            trash.discard(tmp.resolve("sandboxes/abcdef012345"));
            deadline = System.nanoTime() + 10_000_000_000L;
            while (System.nanoTime() < deadline && entries(trashDir) > 1) Thread.sleep(20);
            assertThat(entries(trashDir)).as("the removed sandbox is gone").isEqualTo(1);
            assertThat(marker).as("the stuck entry was not walked again").exists();
        } finally {
            new ProcessBuilder("chattr", "-i", immutable.toString()).inheritIO().start().waitFor();
        }
        Trash.open(trashDir);
        awaitEmpty(trashDir);
    }

    private static void awaitEmpty(Path trashDir) throws Exception {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (System.nanoTime() < deadline && entries(trashDir) > 0) {
            Thread.sleep(20);
        }
        assertThat(entries(trashDir)).isZero();
    }

    private static long entries(Path dir) throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.count();
        }
    }
}
