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
