package dev.kiln.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.HexFormat;

/**
 * Direct edits of an OCI image layout (index.json + blobs/sha256) with Jackson, for what umoci cannot produce.
 * Every edit writes new blobs and repoints the tag; old blobs stay until {@link Umoci#gc}.
 */
public final class OciLayout {
    public static final String INDEX_TYPE = "application/vnd.oci.image.index.v1+json";
    public static final String MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
    private static final String REF_NAME = "org.opencontainers.image.ref.name";
    private static final ObjectMapper JSON = new ObjectMapper();

    private OciLayout() {}

    /** The descriptor in index.json tagged {@code tag}. */
    public static ObjectNode descriptor(Path layout, String tag) {
        for (JsonNode d : readIndex(layout).withArrayProperty("manifests")) {
            if (tag.equals(d.path("annotations").path(REF_NAME).asText(null))) return (ObjectNode) d;
        }
        throw new IllegalArgumentException("no tag '" + tag + "' in " + layout.resolve("index.json"));
    }

    /** Parses the blob {@code digest} ({@code sha256:...}) as JSON. */
    public static ObjectNode readJsonBlob(Path layout, String digest) {
        try {
            return (ObjectNode) JSON.readTree(blobPath(layout, digest).toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read blob " + digest + " in " + layout, e);
        }
    }

    /**
     * Appends a layer to the image at {@code tag}: writes the layer blob, adds {@code diffId} (sha256 of the
     * uncompressed tar) to the config's rootfs.diff_ids plus a history entry, writes the new config and manifest,
     * and repoints the tag in index.json.
     */
    public static void appendLayer(Path layout, String tag, byte[] layerBlob, String mediaType, String diffId,
                                   String createdBy) {
        ObjectNode manifest = readJsonBlob(layout, descriptor(layout, tag).get("digest").asText());
        ObjectNode config = readJsonBlob(layout, manifest.get("config").get("digest").asText());
        config.withObjectProperty("rootfs").withArrayProperty("diff_ids").add(diffId);
        config.withArrayProperty("history").addObject()
                .put("created", Instant.now().toString())
                .put("created_by", createdBy);
        byte[] configBytes = bytes(config);
        ((ObjectNode) manifest.get("config"))
                .put("digest", writeBlob(layout, configBytes))
                .put("size", configBytes.length);
        manifest.withArrayProperty("layers").addObject()
                .put("mediaType", mediaType)
                .put("digest", writeBlob(layout, layerBlob))
                .put("size", layerBlob.length);
        tagBlob(layout, tag, MANIFEST_TYPE, bytes(manifest));
    }

    /** Writes {@code json} as a blob and makes {@code tag} point at it (replacing the tag's old entry). */
    public static String tagBlob(Path layout, String tag, String mediaType, byte[] json) {
        String digest = writeBlob(layout, json);
        ObjectNode index = readIndex(layout);
        ArrayNode manifests = index.withArrayProperty("manifests");
        for (int i = manifests.size() - 1; i >= 0; i--) {
            if (tag.equals(manifests.get(i).path("annotations").path(REF_NAME).asText(null))) manifests.remove(i);
        }
        ObjectNode entry = manifests.addObject().put("mediaType", mediaType).put("digest", digest)
                .put("size", json.length);
        entry.putObject("annotations").put(REF_NAME, tag);
        write(layout.resolve("index.json"), bytes(index));
        return digest;
    }

    /** Stores {@code content} under blobs/sha256 and returns its digest {@code sha256:HEX}. */
    public static String writeBlob(Path layout, byte[] content) {
        String digest = sha256(content);
        Path path = blobPath(layout, digest);
        if (!Files.exists(path)) write(path, content);
        return digest;
    }

    /** {@code sha256:HEX} of {@code content}. */
    public static String sha256(byte[] content) {
        try {
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(content));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    public static byte[] bytes(JsonNode node) {
        try {
            return JSON.writeValueAsBytes(node);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static ObjectMapper json() {
        return JSON;
    }

    private static ObjectNode readIndex(Path layout) {
        try {
            return (ObjectNode) JSON.readTree(layout.resolve("index.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + layout.resolve("index.json"), e);
        }
    }

    private static Path blobPath(Path layout, String digest) {
        if (!digest.startsWith("sha256:")) throw new IllegalArgumentException("not a sha256 digest: " + digest);
        return layout.resolve("blobs/sha256").resolve(digest.substring("sha256:".length()));
    }

    private static void write(Path path, byte[] content) {
        try {
            Path tmp = path.resolveSibling(path.getFileName() + ".tmp");
            Files.write(tmp, content);
            Files.move(tmp, path, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + path, e);
        }
    }
}
