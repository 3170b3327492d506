package dev.kiln.build;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.engine.Engine;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.image.ImageStore;

import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** The build cache's life and what Docker shows of built images: history, prune. */
public final class BuildCache {
    private BuildCache() {
    }

    /**
     * {@code POST /build/prune}: forgets every cached step, and deletes the blobs and unpacked trees only the cache
     * kept. Images with a name of their own stay whole.
     */
    public static Map<String, Object> prune(Engine engine) {
        ImageStore store = engine.images().store();
        long before = storeBytes(store);
        Set<String> deleted = new LinkedHashSet<>();
        for (Image i : store.list()) {
            if (ImageStore.buildCache(i.name())) {
                store.untag(i.name());
                if (store.namesOf(i.id()).isEmpty() && store.list().stream().noneMatch(o -> o.id().equals(i.id()))) {
                    deleted.add(i.id().toString());
                    removeTree(engine, i.id());
                }
            }
        }
        store.collectGarbage();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("CachesDeleted", new ArrayList<>(deleted));
        out.put("SpaceReclaimed", Math.max(0, before - storeBytes(store)));
        return out;
    }

    /**
     * {@code POST /images/prune}: every kiln image has a name, so none dangles; what an unnamed image would hold
     * (blobs no name refers to) is collected.
     */
    public static Map<String, Object> pruneImages(Engine engine, String filters) {
        ImageStore store = engine.images().store();
        long before = storeBytes(store);
        store.collectGarbage();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("ImagesDeleted", List.of());
        out.put("SpaceReclaimed", Math.max(0, before - storeBytes(store)));
        return out;
    }

    /** {@code GET /images/{name}/history}: newest first, as Docker answers it. */
    public static List<Map<String, Object>> history(Engine engine, String name) {
        Image image;
        try {
            image = engine.images().resolve(name);
        } catch (dev.kiln.KilnException e) {
            if (e.kind() == dev.kiln.KilnException.Kind.NOT_FOUND) {
                throw dev.kiln.KilnException.notFound("No such image: " + name);
            }
            throw e;
        }
        JsonNode config;
        try {
            config = ImageState.JSON.readTree(engine.images().store().content().read(image.id()));
        } catch (IOException e) {
            throw dev.kiln.KilnException.corrupt("the config of image " + name + " is not valid JSON");
        }
        List<Descriptor> layers = engine.images().manifest(image).layers();
        List<Map<String, Object>> rows = new ArrayList<>();
        int layer = 0;
        JsonNode history = config.get("history");
        if (history != null && history.isArray()) {
            for (JsonNode h : history) {
                boolean empty = h.path("empty_layer").asBoolean(false);
                long size = 0;
                if (!empty && layer < layers.size()) {
                    size = layers.get(layer++).size();
                }
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("Id", "<missing>");
                row.put("Created", seconds(h.path("created").asText(null)));
                row.put("CreatedBy", h.path("created_by").asText(""));
                row.put("Tags", null);
                row.put("Size", size);
                row.put("Comment", h.path("comment").asText(""));
                rows.add(row);
            }
        }
        java.util.Collections.reverse(rows);
        if (!rows.isEmpty()) {
            rows.getFirst().put("Id", image.id().toString());
            rows.getFirst().put("Tags", engine.images().store().namesOf(image.id()).stream()
                    .map(i -> i.ref().familiar()).toList());
        }
        return rows;
    }

    private static long seconds(String created) {
        try {
            return created == null ? 0 : Instant.parse(created).getEpochSecond();
        } catch (RuntimeException e) {
            return 0;
        }
    }

    private static void removeTree(Engine engine, Digest id) {
        if (!engine.sandboxes().usesImage(id)) {
            java.nio.file.Path tree = engine.images().rootfsPath(id);
            if (java.nio.file.Files.exists(tree)) {
                dev.kiln.rootfs.Trees.delete(tree);
            }
        }
    }

    private static long storeBytes(ImageStore store) {
        long total = 0;
        for (Digest d : store.content().list()) {
            total += store.content().size(d);
        }
        return total;
    }
}
