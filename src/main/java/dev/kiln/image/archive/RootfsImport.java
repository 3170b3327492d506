package dev.kiln.image.archive;

import dev.kiln.KilnException;
import dev.kiln.image.ContentStore;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.image.ImageConfig;
import dev.kiln.image.ImageRef;
import dev.kiln.image.ImageStore;
import dev.kiln.image.Manifest;
import dev.kiln.image.MediaType;
import dev.kiln.image.Platform;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * {@code kiln import ROOTFS.tar REF}, as {@code docker import}: a root filesystem tarball (plain, gzip or zstd)
 * becomes a one-layer image. The layer is stored uncompressed so its digest is its diff ID; entries are checked
 * when the layer is applied, like any pulled layer.
 */
public final class RootfsImport {

    private final ImageStore store;

    public RootfsImport(ImageStore store) {
        this.store = store;
    }

    /**
     * A failed import takes back the blobs it added. A failure to write them (a full disk) is the content store's
     * own error, which says so; "cannot read" is for the tarball.
     */
    public Image importTar(Path tarball, InputStream stdin, ImageRef ref) {
        return store.takingBackOnFailure(added -> importTar(tarball, stdin, ref, added));
    }

    private Image importTar(Path tarball, InputStream stdin, ImageRef ref, Set<Digest> added) {
        Digest layer;
        try (InputStream raw = tarball == null ? stdin : Files.newInputStream(tarball);
             InputStream tar = Compressions.decompressed(new BufferedInputStream(raw, 1 << 16));
             ContentStore.Writer w = store.content().writer(null, -1)) {
            TarHeaders.copy(tar, w); // refuses what is not a tar archive, before anything is stored
            layer = w.commit();
            if (w.added()) {
                added.add(layer);
            }
        } catch (java.nio.file.NoSuchFileException e) {
            throw KilnException.notFound("file " + tarball + " does not exist");
        } catch (IOException e) {
            throw KilnException.corrupt("cannot read " + (tarball == null ? "(stdin)" : tarball) + ": "
                    + e.getMessage());
        }
        Platform host = Platform.host();
        ImageConfig config = new ImageConfig(Instant.now().toString(), host.architecture(), host.os(), null, null,
                new ImageConfig.RootFs("layers", List.of(layer.toString())),
                List.of(new ImageConfig.History(Instant.now().toString(), "kiln import", "Imported from "
                        + (tarball == null ? "-" : tarball.getFileName()), null)));
        Digest configDigest = store.content().put(ArchiveLoader.toJson(config), added);
        Manifest m = new Manifest(2, MediaType.OCI_MANIFEST,
                new Descriptor(MediaType.OCI_CONFIG, configDigest, store.content().size(configDigest)),
                List.of(new Descriptor(MediaType.OCI_LAYER, layer, store.content().size(layer))), null);
        Digest manifest = store.content().put(ArchiveLoader.toJson(m), added);
        return store.tag(ref, manifest, null);
    }
}
