package dev.kiln.rootfs;

import dev.kiln.KilnLog;
import dev.kiln.LibcCall;
import dev.kiln.OwnerOnly;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A directory whose entries are deleted in the background: a tree is renamed into it (one rename, so its old name is
 * free at once) and {@link Trees#delete deleted} after the caller has gone on. A {@code run --rm}'s end waits for
 * its sandbox's removal, and deleting the sandbox's directory in place took 20-30 ms of it on a quiet host (single
 * unlinks take 1-4 ms on this discard-mounted ext4), over 100 ms under load (docs/shim.md).
 *
 * <p>Everything in the trash is garbage: each background pass empties the whole directory, the first when kilnd opens
 * it. One thread per JVM does the passes, so two never walk the same tree. Every entry is a name kiln gave in a
 * directory only root can write, and it is deleted by descriptor ({@link Trees#delete}): what a sandbox wrote inside
 * is never followed.
 *
 * <p>A removed sandbox's directory may still hold mounts (a copy's views of a VM's disk that a killed kilnd left): they
 * are detached before its delete, which never crosses a mount anyway. An entry that cannot be deleted (an immutable
 * file a sandbox made) is logged and left until the next kilnd opens the trash: walking it again at every removal let
 * one sandbox with many such files make every later removal's pass cost seconds. At most one pass waits behind the
 * running one, however many removals come: each pass takes every entry there is (the sixth review's F3).
 */
public final class Trash {
    private static final ExecutorService DELETER = Executors.newSingleThreadExecutor(
            Thread.ofPlatform().daemon().name("kiln-trash").factory());
    private static final AtomicLong SEQUENCE = new AtomicLong();
    private static final KilnLog LOG = KilnLog.of(Trash.class);
    private static final int MNT_DETACH = 2;
    private static final int UMOUNT_NOFOLLOW = 8;

    private final Path dir;
    /** Entries and mounts whose delete or detach failed and was logged: left alone until the next {@link #open}. */
    private final Set<Path> stuck = ConcurrentHashMap.newKeySet();
    /** A pass is queued and has not started yet: a removal then needs no other. */
    private final AtomicBoolean queued = new AtomicBoolean();

    private Trash(Path dir) {
        this.dir = dir;
    }

    /**
     * The trash at {@code dir}, on the same filesystem as the trees it takes (a rename cannot cross filesystems),
     * emptied in the background now: what a kilnd killed before its passes ended goes when the next one opens it.
     */
    public static Trash open(Path dir) {
        Trash trash = new Trash(dir);
        trash.queuePass();
        return trash;
    }

    /**
     * Takes {@code tree} away from its path now and deletes it in the background; deletes it in place when it
     * cannot be moved (another filesystem). Nothing to do when it does not exist.
     */
    public void discard(Path tree) {
        Path aside = dir.resolve(tree.getFileName() + "." + ProcessHandle.current().pid() + "."
                + SEQUENCE.incrementAndGet());
        try {
            if (!Files.isDirectory(dir)) { // once: createDirectories throws and catches one inside when it exists
                Files.createDirectories(dir, OwnerOnly.DIRECTORY);
            }
            Files.move(tree, aside);
        } catch (NoSuchFileException e) {
            return;
        } catch (IOException | UnsupportedOperationException e) {
            Trees.delete(tree);
            return;
        }
        queuePass();
    }

    private void queuePass() {
        if (queued.compareAndSet(false, true)) {
            DELETER.execute(() -> {
                queued.set(false); // a removal from now on needs a pass after this one
                empty();
            });
        }
    }

    /**
     * Deletes every entry of the trash but those that failed before. The entries are listed before the mounts are
     * looked at, so a tree moved in meanwhile (its pass is queued) is never walked with its mounts still in it.
     */
    void empty() {
        List<Path> entries = new ArrayList<>();
        try (DirectoryStream<Path> listed = Files.newDirectoryStream(dir)) {
            for (Path entry : listed) if (!stuck.contains(entry)) entries.add(entry);
        } catch (IOException e) {
            return; // the trash itself is gone: nothing to delete
        }
        if (entries.isEmpty()) return;
        Path self = dir.toAbsolutePath().normalize();
        for (Path mount : Mounts.under(dir)) { // deepest first; detached, so a hung FUSE server cannot hold it
            if (mount.equals(self) || stuck.contains(mount)) continue; // the trash's own mount: not kiln's to undo
            int e = LibcCall.umount2(mount.toString(), MNT_DETACH | UMOUNT_NOFOLLOW);
            if (e != 0 && stuck.add(mount)) {
                LOG.warn("the trash could not detach " + mount + ": " + LibcCall.describe(e));
            }
        }
        for (Path entry : entries) {
            try {
                Trees.delete(entry);
            } catch (UncheckedIOException e) {
                stuck.add(entry);
                LOG.warn("the trash could not delete " + entry + " (tried again when kilnd starts): "
                        + e.getCause().getMessage());
            }
        }
    }
}
