package dev.kiln.image.archive;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.image.ContentStore;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.image.ImageConfig;
import dev.kiln.image.ImageRef;
import dev.kiln.image.ImageStore;
import dev.kiln.image.Index;
import dev.kiln.image.Manifest;
import dev.kiln.image.MediaType;
import dev.kiln.image.Platform;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Loads {@code docker save} archives (legacy and Docker 25+ layouts) and OCI image layouts (tar or directory). Every
 * file goes through the verifying content store; only the small index files are held in memory.
 *
 * <p>Names: {@code io.containerd.image.name} or a full reference in {@code org.opencontainers.image.ref.name}; a
 * bare tag there (as umoci and skopeo write) takes the RepoTags of a {@code manifest.json} for the same config, else
 * becomes {@code localhost/<archive name>:<tag>} so the image is never unreachable.
 */
public final class ArchiveLoader {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern BLOB = Pattern.compile("blobs/sha256/([a-f0-9]{64})");
    private static final Set<String> INDEX_FILES = Set.of("manifest.json", "index.json", "oci-layout", "repositories");
    private static final int MAX_INDEX_FILE = 16 << 20;
    private static final String CONTAINERD_NAME = "io.containerd.image.name";

    private final ImageStore store;

    public ArchiveLoader(ImageStore store) {
        this.store = store;
    }

    /** Loads every image in {@code source}; {@code source} null means the tar on {@code stdin}. */
    public List<Image> load(Path source, InputStream stdin) {
        return load(source, stdin, null);
    }

    /**
     * {@code nameHint}: the archive's file name, for images the archive does not name (see the class comment). A
     * load that fails takes back the blobs it added and no image it tagged refers to (a full disk must not be left
     * fuller by the attempt).
     */
    public List<Image> load(Path source, InputStream stdin, String nameHint) {
        return store.takingBackOnFailure(added -> load(source, stdin, nameHint, added));
    }

    private List<Image> load(Path source, InputStream stdin, String nameHint, Set<Digest> added) {
        Map<String, Digest> files = new HashMap<>();
        Map<String, byte[]> indexFiles = new HashMap<>();
        ArchiveEntries.Visitor visitor = (name, size, in) -> {
            if (INDEX_FILES.contains(name)) {
                if (size > MAX_INDEX_FILE) {
                    throw KilnException.invalid("archive file " + name + " is too large (" + size + " bytes)");
                }
                indexFiles.put(name, in.readNBytes((int) size));
                return;
            }
            var m = BLOB.matcher(name);
            Digest expected = m.matches() ? new Digest(m.group(1)) : null;
            try (ContentStore.Writer w = store.content().writer(expected, size)) {
                in.transferTo(w);
                files.put(name, w.commit());
                if (w.added()) {
                    added.add(files.get(name));
                }
            }
        };
        try {
            if (source == null) {
                ArchiveEntries.read(stdin, visitor);
            } else {
                ArchiveEntries.open(source).forEach(visitor);
            }
        } catch (IOException e) {
            throw KilnException.corrupt("cannot read image archive " + (source == null ? "(stdin)" : source)
                    + ": " + e.getMessage());
        }
        String fallbackRepo = "localhost/" + baseName(nameHint != null ? Path.of(nameHint) : source);
        Map<Digest, List<String>> repoTags = dockerRepoTags(indexFiles.get("manifest.json"), files);
        List<Image> loaded = new ArrayList<>();
        if (indexFiles.containsKey("index.json")) {
            Index index = parse(indexFiles.get("index.json"), Index.class);
            for (Descriptor d : index.manifests()) {
                Descriptor manifest = platformManifest(d);
                Manifest m = store.manifest(manifest.contentDigest());
                for (String name : names(d, m.config().contentDigest(), repoTags, fallbackRepo)) {
                    loaded.add(store.tag(ImageRef.parse(name), manifest.contentDigest(), null));
                }
            }
        } else if (indexFiles.containsKey("manifest.json")) {
            loaded.addAll(loadDockerManifests(indexFiles.get("manifest.json"), files, fallbackRepo, added));
        } else {
            throw KilnException.invalid("archive " + (source == null ? "(stdin)" : source)
                    + " is neither a docker save archive nor an OCI image layout (no manifest.json or index.json)");
        }
        return loaded;
    }

    private Descriptor platformManifest(Descriptor d) {
        if (!MediaType.isIndex(d.mediaType())) {
            return d;
        }
        Index nested = store.readJson(d.contentDigest(), Index.class);
        return nested.select(Platform.host()).orElseThrow(() -> KilnException.notFound(
                "index " + d.digest() + " in the archive has no manifest for " + Platform.host()));
    }

    private List<String> names(Descriptor d, Digest configDigest, Map<Digest, List<String>> repoTags, String fallback) {
        Map<String, String> a = d.annotations() == null ? Map.of() : d.annotations();
        if (a.containsKey(CONTAINERD_NAME)) {
            return List.of(a.get(CONTAINERD_NAME));
        }
        String refName = a.get(Descriptor.REF_NAME);
        if (refName != null && (refName.contains(":") || refName.contains("/"))) {
            return List.of(refName);
        }
        if (repoTags.containsKey(configDigest)) {
            return repoTags.get(configDigest);
        }
        return List.of(fallback + ":" + (refName != null ? refName : "latest"));
    }

    private Map<Digest, List<String>> dockerRepoTags(byte[] manifestJson, Map<String, Digest> files) {
        Map<Digest, List<String>> out = new HashMap<>();
        if (manifestJson == null) {
            return out;
        }
        for (JsonNode entry : parse(manifestJson, JsonNode.class)) {
            Digest config = files.get(entry.path("Config").asText());
            List<String> tags = new ArrayList<>();
            entry.path("RepoTags").forEach(t -> tags.add(t.asText()));
            if (config != null && !tags.isEmpty()) {
                out.put(config, tags);
            }
        }
        return out;
    }

    /** The legacy layout: manifest.json lists config and uncompressed layer tars by path; kiln writes the manifest. */
    private List<Image> loadDockerManifests(byte[] manifestJson, Map<String, Digest> files, String fallback,
                                            Set<Digest> added) {
        List<Image> out = new ArrayList<>();
        for (JsonNode entry : parse(manifestJson, JsonNode.class)) {
            Digest config = require(files, entry.path("Config").asText());
            ImageConfig cfg = store.readJson(config, ImageConfig.class);
            List<Descriptor> layers = new ArrayList<>();
            for (JsonNode l : entry.path("Layers")) {
                Digest layer = require(files, l.asText());
                layers.add(new Descriptor(layerMediaType(layer), layer, store.content().size(layer)));
            }
            if (cfg.rootfs() == null || cfg.rootfs().diffIds() == null
                    || cfg.rootfs().diffIds().size() != layers.size()) {
                throw KilnException.corrupt("image config " + config + " in the archive does not match its layers");
            }
            Manifest m = new Manifest(2, MediaType.OCI_MANIFEST,
                    new Descriptor(MediaType.OCI_CONFIG, config, store.content().size(config)), layers, null);
            Digest manifest = store.content().put(toJson(m), added);
            Set<String> names = new LinkedHashSet<>();
            entry.path("RepoTags").forEach(t -> names.add(t.asText()));
            if (names.isEmpty()) {
                names.add(fallback + ":latest");
            }
            for (String name : names) {
                out.add(store.tag(ImageRef.parse(name), manifest, null));
            }
        }
        return out;
    }

    private String layerMediaType(Digest layer) {
        return switch (Compressions.sniff(store.content().path(layer))) {
            case GZIP -> MediaType.OCI_LAYER_GZIP;
            case ZSTD -> MediaType.OCI_LAYER_ZSTD;
            case NONE -> MediaType.OCI_LAYER;
        };
    }

    private static Digest require(Map<String, Digest> files, String name) {
        Digest d = files.get(name);
        if (d == null) {
            throw KilnException.corrupt("archive's manifest.json names \"" + name + "\", which the archive lacks");
        }
        return d;
    }

    private static String baseName(Path source) {
        if (source == null) {
            return "stdin";
        }
        String n = source.toAbsolutePath().normalize().getFileName().toString().toLowerCase();
        n = n.replaceAll("\\.(tar|tgz|tar\\.gz)$", "").replaceAll("[^a-z0-9._-]", "-").replaceAll("^[._-]+", "");
        return n.isEmpty() ? "loaded" : n;
    }

    static byte[] toJson(Object o) {
        try {
            return JSON.writeValueAsBytes(o);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static <T> T parse(byte[] bytes, Class<T> type) {
        try {
            return JSON.readValue(bytes, type);
        } catch (IOException e) {
            throw KilnException.corrupt("archive index is not valid JSON: "
                    + e.getMessage().lines().findFirst().orElse(""));
        }
    }
}
