package dev.kiln.image.archive;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.image.ImageStore;
import dev.kiln.image.Index;
import dev.kiln.image.Manifest;
import dev.kiln.image.MediaType;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes images as Docker 25+ does: an OCI image layout whose tar also carries a {@code manifest.json}, so both
 * {@code docker load} and OCI tools (skopeo, umoci, podman) read it.
 */
public final class ArchiveWriter {

    private static final byte[] OCI_LAYOUT = "{\"imageLayoutVersion\":\"1.0.0\"}".getBytes();

    private final ImageStore store;

    public ArchiveWriter(ImageStore store) {
        this.store = store;
    }

    public void writeTar(List<Image> images, OutputStream target) throws IOException {
        TarArchiveOutputStream tar = new TarArchiveOutputStream(target, 1 << 16);
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
        for (Digest blob : blobs(images)) {
            Path p = store.content().path(blob);
            TarArchiveEntry e = new TarArchiveEntry("blobs/sha256/" + blob.hex());
            e.setSize(Files.size(p));
            tar.putArchiveEntry(e);
            Files.copy(p, tar);
            tar.closeArchiveEntry();
        }
        put(tar, "oci-layout", OCI_LAYOUT);
        put(tar, "index.json", ArchiveLoader.toJson(index(images)));
        put(tar, "manifest.json", ArchiveLoader.toJson(dockerManifest(images)));
        tar.finish();
        tar.flush();
    }

    private Set<Digest> blobs(List<Image> images) {
        Set<Digest> out = new LinkedHashSet<>();
        for (Image i : images) {
            Manifest m = store.manifest(i);
            m.layers().forEach(l -> out.add(l.contentDigest()));
            out.add(m.config().contentDigest());
            out.add(i.manifestDigest());
        }
        return out;
    }

    private Index index(List<Image> images) {
        List<Descriptor> manifests = new ArrayList<>();
        for (Image i : images) {
            Manifest m = store.manifest(i);
            String mediaType = m.mediaType() != null ? m.mediaType() : MediaType.OCI_MANIFEST;
            Descriptor d = new Descriptor(mediaType, i.manifestDigest(), store.content().size(i.manifestDigest()));
            String tag = i.ref().tag();
            manifests.add(d.withAnnotations(tag == null ? Map.of("io.containerd.image.name", i.name())
                    : Map.of("io.containerd.image.name", i.name(), Descriptor.REF_NAME, tag)));
        }
        return new Index(2, MediaType.OCI_INDEX, manifests, null);
    }

    private ArrayNode dockerManifest(List<Image> images) {
        ArrayNode out = JsonNodeFactory.instance.arrayNode();
        for (Image i : images) {
            Manifest m = store.manifest(i);
            ObjectNode entry = out.addObject();
            entry.put("Config", "blobs/sha256/" + m.config().contentDigest().hex());
            entry.putArray("RepoTags").add(i.ref().familiar());
            ArrayNode layers = entry.putArray("Layers");
            m.layers().forEach(l -> layers.add("blobs/sha256/" + l.contentDigest().hex()));
        }
        return out;
    }

    private static void put(TarArchiveOutputStream tar, String name, byte[] bytes) throws IOException {
        TarArchiveEntry e = new TarArchiveEntry(name);
        e.setSize(bytes.length);
        tar.putArchiveEntry(e);
        tar.write(bytes);
        tar.closeArchiveEntry();
    }
}
