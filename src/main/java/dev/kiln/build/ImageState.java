package dev.kiln.build;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.engine.Images;
import dev.kiln.image.ContentStore;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.image.ImageRef;
import dev.kiln.image.Manifest;
import dev.kiln.image.MediaType;
import dev.kiln.image.Platform;
import dev.kiln.rootfs.TreeArchive;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * An image as a build step sees it: its whole config as JSON (every field of the parent's kept, not only those kiln
 * reads) and its layers. {@link #child} writes the next image: a copy of the config with the step's changes, one more
 * history entry ({@code created_by}, {@code empty_layer} as Docker writes them), and the step's layer if it made one,
 * stored uncompressed so its digest is its diff ID. Also what {@code kiln commit} writes.
 */
public final class ImageState {
    static final ObjectMapper JSON = new ObjectMapper();
    /**
     * The files every sandbox gets from kiln (bind-mounted by runc, written by kiln-init in a VM): never part of a
     * layer, as Docker never commits its own /etc/hosts, hostname and resolv.conf.
     */
    private static final java.util.Set<String> KILN_FILES = java.util.Set.of("etc/hosts", "etc/hostname",
            "etc/resolv.conf");
    /** What a runtime makes in a sandbox's root to mount on: not part of a layer while empty. */
    private static final java.util.Set<String> MOUNT_POINTS = java.util.Set.of("proc", "sys", "dev", ".dockerenv");

    private final ObjectNode config;
    private final List<Descriptor> layers;
    private final Digest id;

    private ImageState(ObjectNode config, List<Descriptor> layers, Digest id) {
        this.config = config;
        this.layers = List.copyOf(layers);
        this.id = id;
    }

    /** {@code FROM scratch}: no layers, an empty config for this host's platform (or {@code platform}'s). */
    static ImageState scratch(Platform platform) {
        ObjectNode c = JSON.createObjectNode();
        c.put("architecture", platform.architecture());
        c.put("os", platform.os());
        if (platform.variant() != null) {
            c.put("variant", platform.variant());
        }
        c.putObject("config");
        c.putObject("rootfs").put("type", "layers").putArray("diff_ids");
        c.putArray("history");
        return new ImageState(c, List.of(), null);
    }

    public static ImageState of(Images images, Image image) {
        try {
            ObjectNode c = (ObjectNode) JSON.readTree(images.store().content().read(image.id()));
            if (!c.has("config") || !c.get("config").isObject()) {
                c.putObject("config");
            }
            return new ImageState(c, images.manifest(image).layers(), image.id());
        } catch (IOException | ClassCastException e) {
            throw KilnException.corrupt("the config of image " + image.name() + " is not valid JSON");
        }
    }

    private static boolean runtimeMade(String name, Path path) {
        try {
            return KILN_FILES.contains(name) || MOUNT_POINTS.contains(name) && TreeArchive.empty(path);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The image ID, null for scratch. */
    Digest id() {
        return id;
    }

    /** A copy of the config to change for the next step. */
    ObjectNode configCopy() {
        return config.deepCopy();
    }

    /** The runtime part ({@code config}) of the config: read-only use. */
    JsonNode runtime() {
        return config.get("config");
    }

    List<Descriptor> layers() {
        return layers;
    }

    /**
     * Writes the child with {@code next} as its config (a {@link #configCopy} changed by the step), the changes in
     * {@code upper} (overlayfs form) as its layer or none when null, and names it {@code name}.
     */
    public Image child(Images images, ObjectNode next, Path upper, String createdBy, String comment, ImageRef name) {
        return child(images, next, upper, false, createdBy, comment, name);
    }

    /**
     * As {@link #child(Images, ObjectNode, Path, String, String, ImageRef)}; {@code ranInSandbox}: the changes are a
     * sandbox's, so what kiln and the runtime put in every sandbox is left out.
     */
    Image child(Images images, ObjectNode next, Path upper, boolean ranInSandbox, String createdBy, String comment,
                ImageRef name) {
        return images.store().takingBackOnFailure(added -> {
            ContentStore content = images.store().content();
            List<Descriptor> all = new ArrayList<>(layers);
            String now = Instant.now().toString();
            next.put("created", now);
            ObjectNode h = JSON.createObjectNode();
            h.put("created", now);
            h.put("created_by", createdBy);
            if (comment != null) {
                h.put("comment", comment);
            }
            if (upper != null) {
                Digest layer;
                try (ContentStore.Writer w = content.writer(null, -1)) {
                    TreeArchive.layer(upper, w, ranInSandbox ? ImageState::runtimeMade : (n, p) -> false);
                    layer = w.commit();
                    if (w.added()) {
                        added.add(layer);
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                all.add(new Descriptor(MediaType.OCI_LAYER, layer, content.size(layer)));
                ObjectNode rootfs = next.has("rootfs") && next.get("rootfs").isObject() ? (ObjectNode) next.get("rootfs")
                        : next.putObject("rootfs");
                rootfs.put("type", "layers");
                ArrayNode diffIds = rootfs.has("diff_ids") && rootfs.get("diff_ids").isArray()
                        ? (ArrayNode) rootfs.get("diff_ids") : rootfs.putArray("diff_ids");
                diffIds.add(layer.toString());
            } else {
                h.put("empty_layer", true);
            }
            ArrayNode history = next.has("history") && next.get("history").isArray() ? (ArrayNode) next.get("history")
                    : next.putArray("history");
            history.add(h);
            try {
                Digest configDigest = content.put(JSON.writeValueAsBytes(next), added);
                Manifest m = new Manifest(2, MediaType.OCI_MANIFEST,
                        new Descriptor(MediaType.OCI_CONFIG, configDigest, content.size(configDigest)), all, null);
                Digest manifest = content.put(JSON.writeValueAsBytes(m), added);
                return images.store().tag(name, manifest, null);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }
}
