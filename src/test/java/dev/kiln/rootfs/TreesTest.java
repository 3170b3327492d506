package dev.kiln.rootfs;

import dev.kiln.LibcCall;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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

    /**
     * A writer still running swaps directories for fifos (renameat2's RENAME_EXCHANGE) while the delete walks them:
     * the delete must neither wait on a fifo nor stop. The old walk opened each directory without O_DIRECTORY and
     * O_NONBLOCK and stayed in open(2) on a fifo within a few rounds (review of 2026-12-07).
     */
    private static final int PAIRS = 300;

    @Test
    void aDirectorySwappedForAFifoNeverHoldsTheDelete() throws Exception {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(8);
        for (int round = 0; round < 40 && System.nanoTime() < until; round++) {
            Path tree = Files.createDirectories(tmp.resolve("fifos" + round));
            List<String> mkfifo = new ArrayList<>(List.of("mkfifo"));
            for (int i = 0; i < PAIRS; i++) {
                Files.writeString(Files.createDirectories(tree.resolve("d" + i)).resolve("f"), "x");
                mkfifo.add(tree.resolve("p" + i).toString());
            }
            assertThat(new ProcessBuilder(mkfifo).start().waitFor()).isZero();
            AtomicBoolean stop = new AtomicBoolean();
            Thread swapper = Thread.ofPlatform().start(() -> {
                while (!stop.get()) {
                    for (int i = 0; i < PAIRS && !stop.get(); i++) {
                        Fs.exchange(tree.resolve("d" + i), tree.resolve("p" + i));
                    }
                }
            });
            CompletableFuture<Void> delete = CompletableFuture.runAsync(() -> {
                try {
                    Trees.delete(tree);
                } catch (RuntimeException raced) {
                    // a name that keeps changing kind may be refused; what matters is that it returns
                }
            });
            try {
                delete.get(10, TimeUnit.SECONDS);
            } catch (TimeoutException held) {
                stop.set(true);
                swapper.join();
                releaseFifos(tree); // a reader held in open(2) goes on once a writer opens the fifo
                throw new AssertionError("the delete was held (by a fifo?) in round " + round);
            } finally {
                stop.set(true);
                swapper.join();
            }
            Trees.delete(tree);
            assertThat(tree).doesNotExist();
        }
    }

    /**
     * A sandbox can make a tree deeper than any path or stack (mkdir and cd in a loop): it is deleted with a bounded
     * number of open descriptors. The old walk recursed with two descriptors per level and threw StackOverflowError
     * near 5,000 levels, leaving the tree (and so the sandbox) undeletable.
     */
    @Test
    void aTreeTenThousandLevelsDeepIsDeletedWithFewDescriptors() throws Throwable {
        // on tmpfs: each rmdir on this machine's discard-mounted ext4 takes milliseconds, 10,000 of them half a minute
        Path shm = Path.of("/dev/shm");
        Path tree = Files.createTempDirectory(Files.isDirectory(shm) ? shm : tmp, "kiln-trees-test-");
        Fs.nest(tree, 10_000);
        long before = openDescriptors();
        AtomicInteger most = new AtomicInteger();
        AtomicBoolean done = new AtomicBoolean();
        Thread counter = Thread.ofPlatform().start(() -> {
            while (!done.get()) {
                most.accumulateAndGet((int) openDescriptors(), Math::max);
                LockSupport.parkNanos(1_000_000);
            }
        });
        try {
            Trees.delete(tree);
        } finally {
            done.set(true);
            counter.join();
            if (Files.exists(tree)) new ProcessBuilder("rm", "-rf", tree.toString()).start().waitFor();
        }
        assertThat(tree).doesNotExist();
        assertThat(most.get() - before).as("descriptors open at once beyond the test's own")
                .isLessThanOrEqualTo(Trees.MAX_OPEN + 16);
    }

    /** A name that is not UTF-8 (an image's file) is removed as its bytes, not as what a String makes of them. */
    @Test
    void namesThatAreNotUtf8AreDeleted() throws Exception {
        Path tree = Files.createDirectories(tmp.resolve("latin1"));
        Process p = new ProcessBuilder("sh", "-c", "mkdir \"$(printf 'd\\351')\" && touch \"$(printf 'd\\351/f\\377')\"")
                .directory(tree.toFile()).start();
        assertThat(p.waitFor()).isZero();
        Trees.delete(tree);
        assertThat(tree).doesNotExist();
    }

    /**
     * The names at a tree's top are the image's (or a build context's, a sandbox's): a file named as the walk names a
     * subtree it moves up (too deep to enter) made every delete of that tree fail, and with it kilnd's start, which
     * deletes what an earlier kilnd left (review of 2026-12-08).
     */
    @Test
    void aFileAtTheNameADeepSubtreeIsMovedToDoesNotStopTheDelete() throws Exception {
        Path tree = Files.createDirectories(tmp.resolve("image-root"));
        for (int i = 1; i <= 4; i++) Files.writeString(tree.resolve(".kiln-deep-" + i), "planted");
        for (int c = 0; c < 8; c++) { // several chains, so one is met before the planted files in any order
            Path p = tree.resolve("chain" + c);
            for (int d = 0; d < Trees.MAX_OPEN + 10; d++) p = p.resolve("d");
            Files.createDirectories(p);
        }
        Trees.delete(tree);
        assertThat(tree).doesNotExist();
    }

    /**
     * A mount inside a tree (a view a killed kilnd left, a volume bound there) is never entered: the delete fails
     * naming it, and what the mount holds stays (review of 2026-12-08: the trash deleted a fuse2fs view's files).
     */
    @Test
    void aMountInsideTheTreeIsNotCrossed() throws Exception {
        Path tree = Files.createDirectories(tmp.resolve("sandbox"));
        Files.writeString(tree.resolve("own"), "x");
        Path view = Files.createDirectories(tree.resolve("a/view"));
        TestMounts.mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", view);
        try {
            Files.writeString(view.resolve("held"), "not the tree's");
            assertThatThrownBy(() -> Trees.delete(tree)).hasMessageContaining("view is another mount");
            assertThat(view.resolve("held")).hasContent("not the tree's");
        } finally {
            TestMounts.detachAll(tmp);
        }
        Trees.delete(tree);
        assertThat(tree).doesNotExist();
    }

    /**
     * A tree whose top is itself a mount (a directory bound over it) is not entered either: the walk's mount is the
     * directory the tree is in (review of 2026-12-08: the top's own mount was taken as the tree's, and what the bound
     * directory held was deleted).
     */
    @Test
    void aTreeWhoseTopIsAMountIsNotEmptied() throws Exception {
        Path users = Files.createDirectories(tmp.resolve("users-data"));
        Files.writeString(users.resolve("precious"), "kept");
        Path top = Files.createDirectories(tmp.resolve("sandboxes/abcdef012345"));
        TestMounts.mount("--bind", users, top);
        try {
            assertThatThrownBy(() -> Trees.delete(top)).hasMessageContaining("abcdef012345 is another mount");
            assertThat(users.resolve("precious")).hasContent("kept");
        } finally {
            TestMounts.detachAll(tmp);
        }
    }

    /**
     * One entry that cannot be removed (an immutable file a container with CAP_LINUX_IMMUTABLE made) does not shield
     * the rest of the tree: everything else goes, and the delete then fails naming it (review of 2026-12-08: the walk
     * stopped at it, and a removed sandbox's data stayed on disk for good).
     */
    @Test
    void anEntryThatCannotBeRemovedDoesNotKeepTheRest() throws Exception {
        Path tree = Files.createDirectories(tmp.resolve("sandbox"));
        Path stuck = Files.writeString(Files.createDirectories(tree.resolve("a-lock")).resolve("locked"), "x");
        for (int d = 0; d < 20; d++) {
            Path dir = Files.createDirectories(tree.resolve("d" + d));
            for (int f = 0; f < 20; f++) Files.writeString(dir.resolve("f" + f), "data");
        }
        assertThat(new ProcessBuilder("chattr", "+i", stuck.toString()).inheritIO().start().waitFor()).isZero();
        try {
            assertThatThrownBy(() -> Trees.delete(tree)).hasMessageContaining("unlink locked");
            try (Stream<Path> left = Files.walk(tree)) {
                assertThat(left.toList()).containsExactlyInAnyOrder(tree, tree.resolve("a-lock"), stuck);
            }
        } finally {
            new ProcessBuilder("chattr", "-i", stuck.toString()).inheritIO().start().waitFor();
        }
    }

    /**
     * Only directories inside the tree are made writable to delete what they hold: the directory the tree is in is
     * not the tree's (a sticky /tmp-like one lost its mode when an entry in the tree would not go).
     */
    @Test
    void theDirectoryTheTreeIsInKeepsItsMode() throws Exception {
        Path shared = Files.createDirectories(tmp.resolve("shared"));
        assertThat(new ProcessBuilder("chmod", "1777", shared.toString()).start().waitFor()).isZero();
        Path top = Files.writeString(shared.resolve("stuck"), "x");
        assertThat(new ProcessBuilder("chattr", "+i", top.toString()).inheritIO().start().waitFor()).isZero();
        try {
            assertThatThrownBy(() -> Trees.delete(top)).isInstanceOf(java.io.UncheckedIOException.class);
            Process mode = new ProcessBuilder("stat", "-c", "%a", shared.toString()).start();
            assertThat(new String(mode.getInputStream().readAllBytes()).strip()).isEqualTo("1777");
        } finally {
            new ProcessBuilder("chattr", "-i", top.toString()).inheritIO().start().waitFor();
        }
    }

    /** A tree whose own name is not in this JVM's encoding is deleted too (it was left, as if deleted). */
    @Test
    void aTopNameThatIsNotInThisJvmsEncodingIsDeleted() throws Exception {
        Path parent = Files.createDirectories(tmp.resolve("parent"));
        Process p = new ProcessBuilder("sh", "-c", "mkdir \"$(printf 'secret\\377')\" && touch \"$(printf 'secret\\377/f')\"")
                .directory(parent.toFile()).start();
        assertThat(p.waitFor()).isZero();
        Path odd;
        try (Stream<Path> all = Files.list(parent)) {
            odd = all.findFirst().orElseThrow(); // a listed path keeps the name's bytes
        }
        assertThat(odd.resolveSibling(odd.getFileName().toString())).as("a String of the name gives other bytes")
                .isNotEqualTo(odd);
        Trees.delete(odd);
        try (Stream<Path> all = Files.list(parent)) {
            assertThat(all.toList()).isEmpty();
        }
    }

    private static long openDescriptors() {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        } catch (Exception racing) {
            return 0;
        }
    }

    private static void releaseFifos(Path tree) throws Exception {
        try (Stream<Path> all = Files.walk(tree)) {
            for (Path f : all.filter(x -> !Files.isDirectory(x) && !Files.isRegularFile(x)).toList()) {
                int fd = LibcCall.open(f.toString(), 1 | LibcCall.O_NONBLOCK | LibcCall.O_CLOEXEC);
                if (fd >= 0) LibcCall.close(fd);
            }
        }
    }

    /** The file system calls the tests need that the JDK lacks. */
    private static final class Fs {
        private static final MethodHandle RENAMEAT2 = LibcCall.plain("renameat2", FunctionDescriptor.of(
                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        private static final MethodHandle MKDIRAT = LibcCall.plain("mkdirat", FunctionDescriptor.of(
                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        private static final int AT_FDCWD = -100;
        private static final int RENAME_EXCHANGE = 2;

        static void exchange(Path a, Path b) {
            try (Arena arena = Arena.ofConfined()) {
                int ignored = (int) RENAMEAT2.invokeExact(AT_FDCWD, arena.allocateFrom(a.toString()), AT_FDCWD,
                        arena.allocateFrom(b.toString()), RENAME_EXCHANGE);
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }

        /** Makes {@code levels} directories each in the last, relative to descriptors (no path gets that long). */
        static void nest(Path top, int levels) throws Throwable {
            int dir = LibcCall.open(top.toString(), LibcCall.O_DIRECTORY | LibcCall.O_CLOEXEC);
            byte[] name = {'a'};
            try (Arena arena = Arena.ofConfined()) {
                for (int i = 0; i < levels; i++) {
                    assertThat((int) MKDIRAT.invokeExact(dir, arena.allocateFrom("a"), 0755)).isZero();
                    int next = LibcCall.openat(dir, name, LibcCall.O_DIRECTORY | LibcCall.O_CLOEXEC);
                    LibcCall.close(dir);
                    assertThat(next).isNotNegative();
                    dir = next;
                }
            } finally {
                LibcCall.close(dir);
            }
        }
    }
}
