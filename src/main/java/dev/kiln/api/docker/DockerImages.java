package dev.kiln.api.docker;

import dev.kiln.KilnException;
import dev.kiln.api.Exchange;
import dev.kiln.engine.Engine;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.image.ImageConfig;
import dev.kiln.image.ImageRef;
import dev.kiln.image.Platform;
import dev.kiln.image.PullProgress;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/** Docker's image endpoints over the engine's image store. */
final class DockerImages {

    private final Engine engine;

    DockerImages(Engine engine) {
        this.engine = engine;
    }

    void register(Routes r) {
        r.add("GET", "/images/json", this::list);
        r.add("GET", "/images/get", x -> save(x, x.queryAll("names")));
        r.add("POST", "/images/create", this::create);
        r.add("POST", "/images/load", this::load);
        r.add("GET", "/images/search", x -> Routes.unsupported(x, "image search"));
        r.add("GET", "/images/{name*}/json", x -> x.json(inspect(resolve(x.path("name")))));
        r.add("GET", "/images/{name*}/get", x -> save(x, List.of(x.path("name"))));
        r.add("POST", "/images/{name*}/tag", this::tag);
        r.add("POST", "/images/{name*}/push", this::push);
        r.add("DELETE", "/images/{name*}", this::remove);
    }

    private Image resolve(String name) {
        try {
            return engine.images().resolve(name);
        } catch (KilnException e) {
            if (e.kind() == KilnException.Kind.NOT_FOUND) {
                throw KilnException.notFound("No such image: " + name);
            }
            throw e;
        }
    }

    private void list(Exchange x) {
        Map<String, List<String>> filters = Filters.parse(x.query("filters"));
        Filters.only(filters, List.of("reference", "dangling", "label"));
        Map<Digest, Image> byId = new LinkedHashMap<>();
        for (Image i : engine.images().list()) {
            if (Filters.any(filters, "reference", ref -> referenceMatches(ref, i.ref()))) {
                byId.putIfAbsent(i.id(), i);
            }
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (Image i : byId.values()) {
            Map<String, Object> summary = summary(engine, i);
            @SuppressWarnings("unchecked")
            Map<String, String> labels = (Map<String, String>) summary.get("Labels");
            if (Filters.all(filters, "label", l -> labelMatches(l, labels))
                    && Filters.any(filters, "dangling", d -> !d.equals("true"))) {
                out.add(summary);
            }
        }
        x.json(out);
    }

    private static boolean referenceMatches(String pattern, ImageRef ref) {
        String familiar = ref.familiar();
        String repo = familiar.replaceAll(":[^/:]*$", "");
        String glob = pattern.replace(".", "\\.").replace("*", "[^/]*");
        return familiar.matches(glob) || repo.matches(glob) || ref.toString().matches(glob);
    }

    static boolean labelMatches(String filter, Map<String, String> labels) {
        int eq = filter.indexOf('=');
        if (eq < 0) {
            return labels.containsKey(filter);
        }
        return filter.substring(eq + 1).equals(labels.get(filter.substring(0, eq)));
    }

    static Map<String, Object> summary(Engine engine, Image i) {
        List<String> tags = new ArrayList<>();
        List<String> digests = new ArrayList<>();
        for (Image n : engine.images().store().namesOf(i.id())) { // the build cache's names are left out
            tags.add(n.ref().familiar());
            if (n.repoDigest() != null) {
                digests.add(repository(n.ref()) + "@" + n.repoDigest());
            }
        }
        ImageConfig c = config(engine, i);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("Id", i.id().toString());
        m.put("ParentId", "");
        m.put("RepoTags", tags);
        m.put("RepoDigests", digests);
        m.put("Created", epochSeconds(i));
        m.put("Size", i.size());
        m.put("SharedSize", -1);
        m.put("VirtualSize", i.size());
        m.put("Labels", c == null || c.config() == null || c.config().labels() == null ? Map.of() : c.config().labels());
        m.put("Containers", -1);
        return m;
    }

    private static ImageConfig config(Engine engine, Image i) {
        try {
            return engine.images().config(i);
        } catch (RuntimeException e) {
            return null;
        }
    }

    private static String repository(ImageRef ref) {
        return ref.familiar().replaceAll("[:@][^/]*$", "");
    }

    private static long epochSeconds(Image i) {
        try {
            return Instant.parse(i.created()).getEpochSecond();
        } catch (RuntimeException e) {
            return i.added() / 1000;
        }
    }

    private Map<String, Object> inspect(Image image) {
        ImageConfig c = engine.images().config(image);
        Map<String, Object> summary = summary(engine, image);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("Id", image.id().toString());
        r.put("RepoTags", summary.get("RepoTags"));
        r.put("RepoDigests", summary.get("RepoDigests"));
        r.put("Parent", "");
        r.put("Comment", "");
        r.put("Created", c.created() == null ? "0001-01-01T00:00:00Z" : c.created());
        r.put("DockerVersion", "");
        r.put("Author", "");
        var config = engine.images().runtimeConfig(image);
        r.put("Config", config);
        // docker-compose 1.29 reads ContainerConfig.Volumes when it recreates a container (Docker < 26 sent it)
        r.put("ContainerConfig", config);
        r.put("Architecture", c.architecture());
        if (c.variant() != null) {
            r.put("Variant", c.variant());
        }
        r.put("Os", c.os());
        r.put("Size", image.size());
        r.put("GraphDriver", Map.of("Name", "kiln", "Data", Map.of()));
        r.put("RootFS", Map.of("Type", "layers", "Layers", c.rootfs() == null || c.rootfs().diffIds() == null
                ? List.of() : c.rootfs().diffIds()));
        r.put("Metadata", Map.of("LastTagTime", "0001-01-01T00:00:00Z"));
        return r;
    }

    // ---- pull, push ----

    private void create(Exchange x) {
        String from = x.query("fromImage");
        if (from == null || from.isEmpty()) {
            if (x.query("fromSrc") != null) {
                importRootfs(x);
                return;
            }
            throw KilnException.invalid("fromImage or fromSrc is required");
        }
        String tag = x.query("tag", "");
        String ref = tag.isEmpty() ? from : tag.startsWith("sha256:") ? from + "@" + tag : from + ":" + ImageRef.tag(tag);
        ImageRef parsed = ImageRef.parse(ref);
        Platform platform = x.query("platform", "").isEmpty() ? Platform.host() : Platform.parse(x.query("platform"));
        ProgressStream out = new ProgressStream(x);
        AtomicBoolean fetched = new AtomicBoolean();
        try {
            Image image = engine.images().pull(ref, platform, out.pullProgress(parsed, fetched), Set.of());
            Digest digest = image.repoDigest() != null ? image.repoDigest() : image.manifestDigest();
            out.write(Map.of("status", "Digest: " + digest));
            out.write(Map.of("status", "Status: " + (fetched.get() ? "Downloaded newer image for "
                    : "Image is up to date for ") + parsed.familiar()));
        } catch (KilnException | UncheckedIOException e) {
            out.fail(e);
        }
    }

    private void importRootfs(Exchange x) {
        if (!x.query("fromSrc").equals("-")) {
            throw KilnException.invalid("kiln does not support importing from a URL yet (use fromSrc=-)");
        }
        String repo = x.query("repo", "");
        if (repo.isEmpty()) {
            throw KilnException.invalid("kiln needs repo= to name an imported image");
        }
        if (!x.query("changes", "").isEmpty() || !x.query("message", "").isEmpty()) {
            // never dropped: a CMD/ENV/... change or a message kiln would not apply is refused by name
            throw KilnException.invalid("kiln does not support import --change and --message yet");
        }
        String ref = x.query("tag", "").isEmpty() ? repo : repo + ":" + ImageRef.tag(x.query("tag"));
        ImageRef.parse(ref); // before the body is read
        Image image = engine.images().importRootfs(null, x.body(), ref);
        new ProgressStream(x).write(Map.of("status", image.id().toString()));
    }

    private void push(Exchange x) {
        String name = x.path("name");
        String ref = x.query("tag", "").isEmpty() ? name : name + ":" + ImageRef.tag(x.query("tag"));
        resolve(ref);
        ProgressStream out = new ProgressStream(x);
        ImageRef parsed = ImageRef.parse(ref);
        out.write(Map.of("status", "The push refers to repository [" + parsed.name() + "]"));
        try {
            Digest digest = engine.images().push(ref, out.pushProgress(), Set.of());
            out.write(Map.of("status", (parsed.tag() == null ? "latest" : parsed.tag()) + ": digest: " + digest));
            out.write(Map.of("progressDetail", Map.of(), "aux", Map.of("Tag", parsed.tag() == null ? "latest"
                    : parsed.tag(), "Digest", digest.toString())));
        } catch (KilnException | UncheckedIOException e) {
            out.fail(e);
        }
    }

    /**
     * Docker's JSON-message stream: the status (200) is committed with the first message, so an error before any
     * progress (an unknown image, no such registry) is still an HTTP error the client shows as such.
     */
    private static final class ProgressStream {
        private final Exchange x;
        private OutputStream out;
        private final Map<String, Long> lastProgress = new HashMap<>();

        ProgressStream(Exchange x) {
            this.x = x;
        }

        synchronized void write(Object message) {
            try {
                if (out == null) {
                    x.status(200);
                    x.contentType("application/json");
                    out = x.out();
                }
                dev.kiln.api.JsonLines.write(out, DockerApi.JSON, message);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        synchronized void fail(RuntimeException e) {
            if (out == null) {
                throw e;
            }
            report(e);
        }

        /** The error as the stream's message, committing the 200 if nothing went out yet. */
        synchronized void report(RuntimeException e) {
            String message = e instanceof UncheckedIOException u ? String.valueOf(u.getCause().getMessage())
                    : e.getMessage();
            write(Map.of("errorDetail", Map.of("message", message), "error", message));
        }

        private static String shortId(Descriptor d) {
            String hex = d.digest().substring(d.digest().indexOf(':') + 1);
            return hex.substring(0, Math.min(12, hex.length()));
        }

        private synchronized boolean due(String id) {
            long now = System.nanoTime();
            Long last = lastProgress.get(id);
            if (last != null && now - last < 100_000_000L) {
                return false;
            }
            lastProgress.put(id, now);
            return true;
        }

        PullProgress pullProgress(ImageRef ref, AtomicBoolean fetched) {
            return new PullProgress() {
                @Override
                public void resolved(ImageRef r, Digest manifest, int layers) {
                    write(Map.of("status", "Pulling from " + ref.familiar().replaceAll("[:@][^/]*$", ""),
                            "id", ref.tag() == null ? "latest" : ref.tag()));
                }

                @Override
                public void layerStarted(Descriptor layer) {
                    write(Map.of("status", "Pulling fs layer", "progressDetail", Map.of(), "id", shortId(layer)));
                }

                @Override
                public void layerProgress(Descriptor layer, long bytes) {
                    if (due(shortId(layer))) {
                        write(Map.of("status", "Downloading", "progressDetail", Map.of("current", bytes,
                                "total", layer.size()), "id", shortId(layer)));
                    }
                }

                @Override
                public void layerDone(Descriptor layer, boolean alreadyPresent) {
                    if (!alreadyPresent) {
                        fetched.set(true);
                    }
                    write(Map.of("status", alreadyPresent ? "Already exists" : "Pull complete",
                            "progressDetail", Map.of(), "id", shortId(layer)));
                }
            };
        }

        PullProgress pushProgress() {
            return new PullProgress() {
                @Override
                public void layerStarted(Descriptor layer) {
                    write(Map.of("status", "Preparing", "progressDetail", Map.of(), "id", shortId(layer)));
                }

                @Override
                public void layerProgress(Descriptor layer, long bytes) {
                    if (due(shortId(layer))) {
                        write(Map.of("status", "Pushing", "progressDetail", Map.of("current", bytes,
                                "total", layer.size()), "id", shortId(layer)));
                    }
                }

                @Override
                public void layerDone(Descriptor layer, boolean alreadyPresent) {
                    write(Map.of("status", alreadyPresent ? "Layer already exists" : "Pushed",
                            "progressDetail", Map.of(), "id", shortId(layer)));
                }
            };
        }
    }

    // ---- tag, remove, save, load ----

    private void tag(Exchange x) {
        String repo = x.query("repo", "");
        if (repo.isEmpty()) {
            throw KilnException.invalid("repo is required");
        }
        resolve(x.path("name"));
        String target = x.query("tag", "").isEmpty() ? repo : repo + ":" + ImageRef.tag(x.query("tag"));
        engine.images().tag(x.path("name"), target);
        x.status(201);
    }

    private void remove(Exchange x) {
        resolve(x.path("name"));
        List<Map<String, String>> out = new ArrayList<>();
        for (String line : engine.removeImage(x.path("name"), x.flag("force"))) {
            int colon = line.indexOf(": ");
            out.add(Map.of(line.substring(0, colon), line.substring(colon + 2)));
        }
        x.json(out);
    }

    private void save(Exchange x, List<String> names) {
        if (names == null || names.isEmpty()) {
            throw KilnException.invalid("names is required");
        }
        names.forEach(this::resolve);
        x.contentType("application/x-tar");
        engine.images().save(names, x.out());
    }

    /** Docker answers a load 200 whatever befalls it: a bad archive is an error message in the stream. */
    private void load(Exchange x) {
        ProgressStream out = new ProgressStream(x);
        List<Image> loaded;
        try {
            loaded = engine.images().load(x.body(), null);
        } catch (KilnException | UncheckedIOException e) {
            out.report(e);
            return;
        }
        for (Image i : loaded) {
            out.write(Map.of("stream", "Loaded image: " + i.ref().familiar() + "\n"));
        }
    }
}
