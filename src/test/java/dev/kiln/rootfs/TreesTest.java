package dev.kiln.rootfs;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

class TreesTest {
    @TempDir
    Path tmp;

    @Test
    void deletesATreeWithReadOnlyDirectoriesAndLinksButNotWhatTheLinksName() throws Exception {
        Path outside = Files.createDirectories(tmp.resolve("outside"));
        Files.writeString(outside.resolve("keep"), "keep\n");
        Path tree = Files.createDirectories(tmp.resolve("tree/a/b"));
        Files.writeString(tree.resolve("f"), "x");
        Files.createSymbolicLink(tmp.resolve("tree/a/link"), outside);
        Files.createSymbolicLink(tmp.resolve("tree/a/b/file-link"), outside.resolve("keep"));
        Files.setPosixFilePermissions(tmp.resolve("tree/a"), java.nio.file.attribute.PosixFilePermissions
                .fromString("r-xr-xr-x"));

        Trees.delete(tmp.resolve("tree"));
        assertThat(tmp.resolve("tree")).doesNotExist();
        assertThat(Files.readString(outside.resolve("keep"))).isEqualTo("keep\n");
        Trees.delete(tmp.resolve("tree")); // nothing there: nothing to do
    }

    /**
     * Whoever wrote the tree may still run (a jailed VMM, a sandbox's process) and swap one of its directories for a
     * link to a host directory while the delete walks it: nothing the link names may be removed.
     */
    @Test
    void aDirectorySwappedForALinkWhileTheDeleteRunsIsNeverFollowed() throws Exception {
        Path outside = Files.createDirectories(tmp.resolve("outside"));
        AtomicBoolean stop = new AtomicBoolean();
        for (int round = 0; round < 25 && !stop.get(); round++) {
            for (int i = 0; i < 20; i++) Files.writeString(outside.resolve("f" + i), "keep");
            Path tree = tmp.resolve("tree" + round);
            Path e = Files.createDirectories(tree.resolve("e"));
            for (int i = 0; i < 20; i++) Files.writeString(e.resolve("f" + i), "mine");
            Thread swapper = Thread.ofPlatform().start(() -> {
                Path aside = tree.resolve("aside");
                for (int n = 0; n < 300; n++) {
                    try {
                        Files.move(e, aside, StandardCopyOption.ATOMIC_MOVE);
                        Files.createSymbolicLink(e, outside);
                        Files.delete(e);
                        Files.move(aside, e, StandardCopyOption.ATOMIC_MOVE);
                    } catch (Exception gone) {
                        return; // the delete has got there
                    }
                }
            });
            try {
                Trees.delete(tree);
            } catch (RuntimeException raced) {
                // a name that changed kind twice under it is refused; what matters is what it removed
            }
            swapper.join();
            Trees.delete(tree);
            long kept = Files.list(outside).count();
            if (kept != 20) stop.set(true);
            assertThat(kept).as("files left outside the tree after round " + round).isEqualTo(20);
        }
    }
}
