package dev.kiln.build;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;
import dev.kiln.rootfs.LayerApplier;
import dev.kiln.rootfs.Mounts;
import dev.kiln.rootfs.Trees;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;

/**
 * The parent image's tree with a fresh overlay on top, mounted on the host for the steps kilnd does itself (COPY,
 * ADD, WORKDIR): archives are extracted into it with the layer code's guarantees (nothing written or followed outside
 * the root, symlinks resolved inside it), and what they changed is left in {@link #upper}, overlayfs's record, which
 * becomes the step's layer exactly as a RUN step's does. Closing unmounts it and deletes it all.
 */
final class StepTree implements AutoCloseable {
    private static final LayerApplier APPLIER = new LayerApplier(LayerApplier.Limits.defaults());

    private final Path dir;
    private final Path merged;

    private StepTree(Path dir, Path merged) {
        this.dir = dir;
        this.merged = merged;
    }

    /** Mounts {@code lower} (an unpacked image; null for scratch) under a new upper directory in {@code buildRoot}. */
    static StepTree over(Path lower, Path buildRoot) {
        Path dir = buildRoot.resolve("step-" + UUID.randomUUID());
        try {
            Files.createDirectories(buildRoot, OwnerOnly.DIRECTORY);
            Files.createDirectory(dir, OwnerOnly.DIRECTORY);
            Path low = lower;
            if (low == null) {
                low = Files.createDirectory(dir.resolve("empty"));
            }
            Path upper = Files.createDirectory(dir.resolve("upper"));
            Files.setAttribute(upper, "unix:mode", 0755);
            Path merged = dir.resolve("merged");
            Mounts.overlay(low, upper, dir.resolve("work"), merged);
            return new StepTree(dir, merged);
        } catch (IOException e) {
            Trees.delete(dir);
            throw new UncheckedIOException(e);
        } catch (RuntimeException e) {
            Trees.delete(dir);
            throw e;
        }
    }

    /** The merged tree (image + this step's changes), for resolving paths inside the root. */
    Path root() {
        return merged;
    }

    Path upper() {
        return dir.resolve("upper");
    }

    /** A scratch directory of this step for staging files (heredocs, the archive being built). */
    Path scratch(String name) {
        return dir.resolve(name);
    }

    /** Extracts the tar in {@code tar} into directory {@code into} of the root ({@code ""}: the root). */
    void extract(InputStream tar, String into) {
        try {
            APPLIER.extract(tar, merged, into, new LayerApplier.Extraction(false, true, true));
        } catch (KilnException e) {
            throw e.kind() == KilnException.Kind.CORRUPT ? KilnException.invalid(e.getMessage()) : e;
        }
    }

    void extract(Path tarFile, String into) {
        try (InputStream in = new BufferedInputStream(Files.newInputStream(tarFile), 1 << 16)) {
            extract(in, into);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Unmounts the overlay (the upper directory keeps the changes) so they can be read as a layer. */
    void unmount() {
        Mounts.unmount(merged, false);
    }

    /**
     * Unmounts, then deletes the tree after the step: a COPY's upper directory of thousands of files takes a second or
     * more to delete, which the next step need not wait for (a kilnd stopped meanwhile leaves it to the next start,
     * which empties the build directory).
     */
    @Override
    public void close() {
        Mounts.unmount(merged, true);
        Thread.ofVirtual().name("build-step-delete").start(() -> Trees.delete(dir));
    }
}
