package dev.kiln.api;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Images;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.image.ImageRef;
import dev.kiln.image.Platform;
import dev.kiln.image.PullProgress;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The native image API under {@code /v1/images}. Image references travel in the query ({@code ?ref=}). */
public final class ImageRoutes {

    private final Engine engine;

    public ImageRoutes(Engine engine) {
        this.engine = engine;
    }

    public void register(Router r) {
        r.add("GET", "/v1/images", x -> x.json(engine.images().list().stream().map(ImageRoutes::summary).toList()));
        r.add("GET", "/v1/images/inspect", x -> x.json(ImageView.inspect(engine.images(),
                engine.images().resolve(required(x, "ref")))));
        r.add("POST", "/v1/images/pull", this::pull);
        r.add("POST", "/v1/images/push", this::push);
        r.add("DELETE", "/v1/images", x -> x.json(engine.removeImage(required(x, "ref"), x.flag("force"))));
        r.add("POST", "/v1/images/tag", x -> {
            engine.images().tag(required(x, "source"), required(x, "target"));
            x.noContent();
        });
        r.add("POST", "/v1/images/mount", x -> x.json(Map.of("path",
                engine.images().mount(required(x, "ref")).toString())));
        r.add("POST", "/v1/images/unmount", x -> {
            engine.images().unmount(required(x, "ref"));
            x.noContent();
        });
        r.add("POST", "/v1/images/load", x -> x.json(engine.images().load(x.body(), x.query("name")).stream()
                .map(i -> i.ref().familiar()).toList()));
        r.add("POST", "/v1/images/import", x -> x.json(Map.of("id",
                engine.images().importRootfs(null, x.body(), required(x, "ref")).id().toString())));
        r.add("GET", "/v1/images/save", x -> {
            List<String> refs = x.queryAll("ref");
            if (refs == null || refs.isEmpty()) {
                throw KilnException.invalid("save needs at least one ?ref=");
            }
            refs.forEach(engine.images()::resolve);
            x.contentType("application/x-tar");
            engine.images().save(refs, x.out());
        });
    }

    static String required(Exchange x, String name) {
        String v = x.query(name);
        if (v == null || v.isEmpty()) {
            throw KilnException.invalid("missing query parameter \"" + name + "\"");
        }
        return v;
    }

    static Map<String, Object> summary(Image i) {
        ImageRef ref = i.ref();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", i.name());
        m.put("repository", ref.name());
        m.put("tag", ref.tag());
        m.put("familiar", ref.familiar());
        m.put("id", i.id().toString());
        m.put("digest", (i.repoDigest() != null ? i.repoDigest() : i.manifestDigest()).toString());
        m.put("created", i.created());
        m.put("size", i.size());
        return m;
    }

    /** Progress as JSON lines; the last line is {"image": …} or {"error": …} (the status is already 200 then). */
    private void pull(Exchange x) {
        String ref = required(x, "ref");
        Platform platform = x.query("platform") == null ? Platform.host() : Platform.parse(x.query("platform"));
        ImageRef.parse(ref);
        streamProgress(x, p -> {
            Image image = engine.images().pull(ref, platform, p, insecure(x));
            return Map.of("image", image.name(), "digest",
                    (image.repoDigest() != null ? image.repoDigest() : image.manifestDigest()).toString());
        });
    }

    private void push(Exchange x) {
        String ref = required(x, "ref");
        engine.images().resolve(ref);
        streamProgress(x, p -> Map.of("digest", engine.images().push(ref, p, insecure(x)).toString()));
    }

    private static java.util.Set<String> insecure(Exchange x) {
        List<String> hosts = x.queryAll("insecure");
        return hosts == null ? java.util.Set.of() : java.util.Set.copyOf(hosts);
    }

    interface Job {
        Map<String, String> run(PullProgress progress);
    }

    private static void streamProgress(Exchange x, Job job) {
        x.status(200);
        x.contentType("application/x-ndjson");
        OutputStream out = x.out();
        JsonLines lines = new JsonLines(out);
        PullProgress progress = new PullProgress() {
            @Override
            public void resolved(ImageRef ref, Digest manifest, int layers) {
                lines.write(Map.of("status", "resolved", "ref", ref.toString(), "manifest", manifest.toString()));
            }

            @Override
            public void layerStarted(Descriptor layer) {
                lines.write(Map.of("status", "started", "id", layer.digest(), "total", layer.size()));
            }

            @Override
            public void layerProgress(Descriptor layer, long bytes) {
                lines.writeThrottled(layer.digest(), Map.of("status", "progress", "id", layer.digest(),
                        "current", bytes, "total", layer.size()));
            }

            @Override
            public void layerDone(Descriptor layer, boolean alreadyPresent) {
                lines.write(Map.of("status", alreadyPresent ? "exists" : "done", "id", layer.digest(),
                        "total", layer.size()));
            }
        };
        try {
            lines.write(job.run(progress));
        } catch (KilnException e) {
            lines.write(Map.of("error", e.getMessage()));
        } catch (UncheckedIOException e) {
            lines.write(Map.of("error", String.valueOf(e.getCause().getMessage())));
        }
    }

    /** Writes one JSON object per line and flushes; progress lines at most ten times a second per layer. */
    private static final class JsonLines {
        private final OutputStream out;
        private final Map<String, Long> lastWrite = new LinkedHashMap<>();

        JsonLines(OutputStream out) {
            this.out = out;
        }

        synchronized void writeThrottled(String key, Object value) {
            long now = System.nanoTime();
            Long last = lastWrite.get(key);
            if (last != null && now - last < 100_000_000L) {
                return;
            }
            lastWrite.put(key, now);
            write(value);
        }

        synchronized void write(Object value) {
            try {
                dev.kiln.api.JsonLines.write(out, Exchange.JSON, value);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /** Docker-shaped image inspect. */
    static final class ImageView {
        static Map<String, Object> inspect(Images images, Image image) {
            var c = images.config(image);
            var m = images.manifest(image);
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("Id", image.id().toString());
            List<String> tags = new ArrayList<>();
            images.store().namesOf(image.id()).forEach(i -> tags.add(i.ref().familiar()));
            r.put("RepoTags", tags);
            String repo = image.ref().familiar().replaceAll("[:@][^/]*$", "");
            r.put("RepoDigests", image.repoDigest() == null ? List.of() : List.of(repo + "@" + image.repoDigest()));
            r.put("ManifestDigest", image.manifestDigest().toString());
            r.put("Created", c.created());
            r.put("Architecture", c.architecture());
            r.put("Os", c.os());
            if (c.variant() != null) {
                r.put("Variant", c.variant());
            }
            r.put("Size", image.size());
            r.put("Config", images.runtimeConfig(image));
            ObjectNode rootfs = Exchange.JSON.createObjectNode().put("Type", "layers");
            rootfs.set("Layers", Exchange.JSON.valueToTree(c.rootfs() == null ? List.of() : c.rootfs().diffIds()));
            r.put("RootFS", rootfs);
            r.put("Layers", m.layers());
            return r;
        }
    }
}
