package dev.kiln.image;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.state.Database;

import java.io.IOException;
import java.sql.SQLException;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/** Image names in SQLite, bytes in the {@link ContentStore}. */
public final class ImageStore {

    static final ObjectMapper JSON = new ObjectMapper();

    /**
     * The repository of the build cache's images ({@code kiln build}: one name per step, its tag the step's cache
     * key). They are images like any other, so garbage collection keeps their blobs; listings and an image's names
     * leave them out, as Docker keeps intermediate images out of {@code docker images}.
     */
    public static final String BUILD_CACHE = "localhost/kiln-build-cache";

    public static boolean buildCache(String name) {
        return name.startsWith(BUILD_CACHE + ":");
    }

    private final Database db;
    private final ContentStore content;

    public ImageStore(Database db, ContentStore content) {
        this.db = db;
        this.content = content;
    }

    public ContentStore content() {
        return content;
    }

    public Manifest manifest(Digest d) {
        return readJson(d, Manifest.class);
    }

    public ImageConfig config(Image image) {
        return readJson(image.id(), ImageConfig.class);
    }

    public Manifest manifest(Image image) {
        return manifest(image.manifestDigest());
    }

    public <T> T readJson(Digest d, Class<T> type) {
        try {
            return JSON.readValue(content.read(d), type);
        } catch (IOException e) {
            throw KilnException.corrupt("blob " + d + " is not a valid " + type.getSimpleName() + ": "
                    + e.getMessage().lines().findFirst().orElse(""));
        }
    }

    /** Points {@code ref} at a manifest already in the content store (with its config and layers). */
    public Image tag(ImageRef ref, Digest manifestDigest, Digest repoDigest) {
        Manifest m = manifest(manifestDigest);
        Digest id = m.config().contentDigest();
        ImageConfig config = readJson(id, ImageConfig.class);
        for (Descriptor layer : m.layers()) {
            if (!content.has(layer.contentDigest())) {
                throw KilnException.corrupt("image " + ref.familiar() + " lacks layer " + layer.digest());
            }
        }
        Image image = new Image(ref.toString(), manifestDigest, repoDigest, id, m.totalSize(), config.created(),
                System.currentTimeMillis());
        update("INSERT OR REPLACE INTO images(name, manifest_digest, repo_digest, image_id, size, created, added) "
                        + "VALUES (?,?,?,?,?,?,?)",
                image.name(), manifestDigest.toString(), repoDigest == null ? null : repoDigest.toString(),
                id.toString(), image.size(), image.created(), image.added());
        return image;
    }

    public List<Image> list() {
        return query("SELECT * FROM images ORDER BY added DESC, name");
    }

    public Optional<Image> byName(ImageRef ref) {
        return query("SELECT * FROM images WHERE name = ?", ref.toString()).stream().findFirst();
    }

    /**
     * Finds an image as Docker does: by name (normalised), by full or short image ID, or by manifest digest.
     * An ID prefix that matches two images is ambiguous and refused.
     */
    public Image resolve(String userRef) {
        if (userRef.matches("(sha256:)?[a-f0-9]{4,64}")) {
            String hex = userRef.startsWith("sha256:") ? userRef.substring(7) : userRef;
            List<Image> byId = query("SELECT * FROM images WHERE image_id LIKE ? OR manifest_digest LIKE ?",
                    "sha256:" + hex + "%", "sha256:" + hex + "%");
            Set<Digest> ids = new HashSet<>();
            byId.forEach(i -> ids.add(i.id()));
            if (ids.size() > 1) {
                throw KilnException.invalid("image ID prefix \"" + userRef + "\" is ambiguous (give more characters)");
            }
            if (!byId.isEmpty()) {
                return byId.getFirst();
            }
        }
        ImageRef ref;
        try {
            ref = ImageRef.parse(userRef);
        } catch (KilnException e) {
            throw KilnException.notFound("no such image: " + userRef);
        }
        if (ref.digest() != null) {
            List<Image> pinned = query("SELECT * FROM images WHERE (manifest_digest = ? OR repo_digest = ?) "
                    + "AND name LIKE ?", ref.digest().toString(), ref.digest().toString(), ref.name() + "%");
            if (!pinned.isEmpty()) {
                return pinned.getFirst();
            }
        }
        return byName(ref).orElseThrow(() -> KilnException.notFound("no such image: " + userRef
                + " (run 'kiln pull " + userRef + "' or check 'kiln images')"));
    }

    /** The names of an image, the build cache's left out. */
    public List<Image> namesOf(Digest imageId) {
        return query("SELECT * FROM images WHERE image_id = ? ORDER BY name", imageId.toString()).stream()
                .filter(i -> !buildCache(i.name())).toList();
    }

    /** Removes a name; works on a full disk too (it frees space: {@link Database#essential}). */
    public void untag(String name) {
        try {
            db.essential("DELETE FROM images WHERE name = ?", name);
        } catch (SQLException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "database update failed: " + e.getMessage(), e);
        }
    }

    /**
     * Deletes blobs no image name refers to any more (manifests, configs, layers). Index blobs are kept only while a
     * name's repo digest names them.
     */
    public Set<Digest> collectGarbage() {
        Set<Digest> live = live();
        Set<Digest> removed = new HashSet<>();
        for (Digest d : content.list()) {
            if (!live.contains(d)) {
                content.delete(d);
                removed.add(d);
            }
        }
        return removed;
    }

    /**
     * Runs {@code work}, which records in the set it is given the blobs it adds; if it fails, those of them that no
     * image name refers to are deleted, so a failed load or import leaves the store as it found it (a full disk is
     * not left fuller by the attempt).
     */
    public <T> T takingBackOnFailure(java.util.function.Function<Set<Digest>, T> work) {
        Set<Digest> added = new HashSet<>();
        try {
            return work.apply(added);
        } catch (RuntimeException e) {
            try {
                removeUnreferenced(added);
            } catch (RuntimeException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
    }

    /**
     * Deletes those of {@code added} that no image name refers to: the blobs a failed load or import wrote, so that
     * it leaves the store as it found it (those a name it did tag refers to stay).
     */
    private void removeUnreferenced(Set<Digest> added) {
        if (added.isEmpty()) {
            return;
        }
        Set<Digest> live = live();
        for (Digest d : added) {
            if (!live.contains(d)) {
                content.delete(d);
            }
        }
    }

    /** The blobs image names refer to: manifests, their configs and layers, and repo digests (indexes). */
    private Set<Digest> live() {
        Set<Digest> live = new HashSet<>();
        for (Image i : list()) {
            live.add(i.manifestDigest());
            if (i.repoDigest() != null) {
                live.add(i.repoDigest());
            }
            Manifest m = manifest(i);
            live.add(m.config().contentDigest());
            m.layers().forEach(l -> live.add(l.contentDigest()));
        }
        return live;
    }

    private void update(String sql, Object... args) {
        try {
            db.update(sql, args);
        } catch (SQLException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "database update failed: " + e.getMessage(), e);
        }
    }

    private List<Image> query(String sql, Object... args) {
        return db.query(sql, rs -> {
            String repo = rs.getString("repo_digest");
            return new Image(rs.getString("name"), Digest.parse(rs.getString("manifest_digest")),
                    repo == null ? null : Digest.parse(repo), Digest.parse(rs.getString("image_id")),
                    rs.getLong("size"), rs.getString("created"), rs.getLong("added"));
        }, args);
    }
}
