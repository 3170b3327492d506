package dev.kiln.rootfs;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;
import dev.kiln.image.Digest;
import dev.kiln.image.MediaType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.UUID;

/**
 * Unpacked root filesystems, one per image ID, under {@code ROOT/rootfs/<hex>}. A tree is built in a temporary
 * sibling and renamed into place only when every layer applied, so a reader never sees a half-unpacked image and a
 * rejected layer leaves nothing behind. Two concurrent unpacks of one image both build; the first rename wins.
 */
public final class RootfsCache {

    /** A layer blob to apply, in order. */
    public record Layer(Path blob, MediaType.Compression compression, Digest digest) {
    }

    private final Path dir;
    private final LayerApplier applier;

    public RootfsCache(Path dir, LayerApplier applier) {
        this.dir = dir;
        this.applier = applier;
    }

    public Path path(Digest imageId) {
        return dir.resolve(imageId.hex());
    }

    public boolean has(Digest imageId) {
        return Files.isDirectory(path(imageId));
    }

    /** One unpack per image at a time in this process: N first runs of an image unpack it once, not N times. */
    private final java.util.concurrent.ConcurrentHashMap<Digest, Object> unpacking = new java.util.concurrent.ConcurrentHashMap<>();

    public Path unpack(Digest imageId, List<Layer> layers) {
        return unpack(imageId, layers, l -> { });
    }

    /**
     * As {@link #unpack(Digest, List)}, calling {@code beforeApply} before each layer: a pull uses it to wait for the
     * layer's blob, so unpacking runs while later layers still download. If it throws, nothing is kept.
     */
    public Path unpack(Digest imageId, List<Layer> layers, java.util.function.Consumer<Layer> beforeApply) {
        Path target = path(imageId);
        if (Files.isDirectory(target)) {
            return target;
        }
        synchronized (unpacking.computeIfAbsent(imageId, d -> new Object())) {
            return unpackOnce(imageId, layers, target, beforeApply);
        }
    }

    private Path unpackOnce(Digest imageId, List<Layer> layers, Path target,
                            java.util.function.Consumer<Layer> beforeApply) {
        if (Files.isDirectory(target)) {
            return target;
        }
        Path tmp = dir.resolve(".unpack-" + imageId.shortId() + "-" + UUID.randomUUID());
        try {
            Files.createDirectories(dir, OwnerOnly.DIRECTORY); // images carry setuid files: root's alone
            Files.createDirectories(tmp);
            Files.setAttribute(tmp, "unix:mode", 0755);
            for (Layer l : layers) {
                beforeApply.accept(l);
                applier.apply(l.blob(), l.compression(), l.digest(), tmp);
            }
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (FileAlreadyExistsException | DirectoryNotEmptyException | AtomicMoveNotSupportedException e) {
            Trees.delete(tmp);
        } catch (IOException e) {
            Trees.delete(tmp);
            if (Files.isDirectory(target)) {
                return target; // another process won the rename ("Directory not empty" is a plain FileSystemException)
            }
            throw new UncheckedIOException(e);
        } catch (RuntimeException e) {
            Trees.delete(tmp);
            throw e;
        }
        return target;
    }

    /**
     * The tree of {@code imageId} made from the unpacked tree {@code base} of an image whose layers it extends by
     * {@code extra} (a build step's child): a hard-link copy of {@code base} (cp -al: directories are new, files share
     * base's inodes) with the extra layers applied. The layer code never writes into an existing file (it replaces
     * it, O_EXCL), so base's tree is never changed through the links.
     */
    public Path derive(Digest imageId, Path base, List<Layer> extra) {
        Path target = path(imageId);
        if (Files.isDirectory(target)) {
            return target;
        }
        synchronized (unpacking.computeIfAbsent(imageId, d -> new Object())) {
            if (Files.isDirectory(target)) {
                return target;
            }
            Path tmp = dir.resolve(".unpack-" + imageId.shortId() + "-" + UUID.randomUUID());
            try {
                Process cp = new ProcessBuilder("cp", "-al", base.toString(), tmp.toString()).redirectErrorStream(true)
                        .start();
                String out = new String(cp.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
                if (cp.waitFor() != 0) {
                    throw new IOException("cp -al " + base + ": " + out.strip());
                }
                for (Layer l : extra) {
                    applier.apply(l.blob(), l.compression(), l.digest(), tmp);
                }
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException | DirectoryNotEmptyException | AtomicMoveNotSupportedException e) {
                Trees.delete(tmp);
            } catch (IOException e) {
                Trees.delete(tmp);
                if (!Files.isDirectory(target)) {
                    throw new UncheckedIOException(e);
                }
            } catch (InterruptedException e) {
                Trees.delete(tmp);
                Thread.currentThread().interrupt();
                throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while copying " + base);
            } catch (RuntimeException e) {
                Trees.delete(tmp);
                throw e;
            }
            return target;
        }
    }

    public void remove(Digest imageId) {
        Path target = path(imageId);
        if (!Files.exists(target)) {
            return;
        }
        // rename first so a concurrent reader never sees a half-deleted tree under the real name
        Path doomed = dir.resolve(".remove-" + imageId.shortId() + "-" + UUID.randomUUID());
        try {
            Files.move(target, doomed, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot remove unpacked image " + target + ": "
                    + e.getMessage(), e);
        }
        Trees.delete(doomed);
    }

    /** Removes leftovers of unpacks and removals interrupted by a crash. */
    public void cleanLeftovers() {
        if (!Files.isDirectory(dir)) {
            return;
        }
        try (var s = Files.list(dir)) {
            s.filter(p -> p.getFileName().toString().startsWith(".")).forEach(Trees::deleteOrWarn);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
