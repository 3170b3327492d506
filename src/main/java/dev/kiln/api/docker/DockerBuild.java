package dev.kiln.api.docker;

import com.fasterxml.jackson.core.type.TypeReference;
import dev.kiln.KilnException;
import dev.kiln.api.Exchange;
import dev.kiln.build.BuildContext;
import dev.kiln.build.BuildOptions;
import dev.kiln.build.BuildOutput;
import dev.kiln.build.Builder;
import dev.kiln.build.BuildCache;
import dev.kiln.build.Commit;
import dev.kiln.engine.Engine;
import dev.kiln.image.Image;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Docker's build endpoints over kiln's builder: {@code POST /build} (the classic builder's protocol: the context tar
 * in the body, the options in the query, progress as JSON messages {@code stream}, {@code aux} and
 * {@code errorDetail}, each written whole with its newline), {@code GET /images/{name}/history},
 * {@code POST /images/prune}, {@code POST /build/prune} and {@code POST /commit}.
 */
final class DockerBuild {
    /** A label naming the isolation of a build's RUN steps, for clients that cannot pass {@code isolation=}. */
    static final String ISOLATION_LABEL = "dev.kiln.isolation";

    private final Engine engine;

    DockerBuild(Engine engine) {
        this.engine = engine;
    }

    void register(Routes r) {
        r.add("POST", "/build", this::build);
        r.add("POST", "/build/prune", x -> x.json(BuildCache.prune(engine)));
        r.add("POST", "/images/prune", x -> x.json(BuildCache.pruneImages(engine, x.query("filters"))));
        r.add("GET", "/images/{name*}/history", x -> x.json(BuildCache.history(engine, x.path("name"))));
        r.add("POST", "/commit", this::commit);
    }

    private void build(Exchange x) {
        if (x.query("remote") != null && !x.query("remote").isEmpty()) {
            throw KilnException.invalid("kiln's builder takes the context in the request body, not from remote="
                    + x.query("remote"));
        }
        Map<String, String> labels = jsonMap(x.query("labels"), "labels");
        String isolation = x.query("isolation", "");
        if (isolation.isEmpty() || isolation.equals("default")) {
            isolation = labels.get(ISOLATION_LABEL);
        }
        BuildOptions o = new BuildOptions(x.query("dockerfile"), x.queryAll("t"), jsonMap(x.query("buildargs"),
                "buildargs"), x.query("target"), x.flag("nocache"), x.flag("pull"), labels, x.flag("q"),
                x.query("networkmode"), isolation, x.query("platform"));
        Stream out = new Stream(x);
        try (BuildContext context = BuildContext.fromTar(x.body(), engine.buildRoot(), o.dockerfile())) {
            Image image = new Builder(engine).build(context.dockerfile(), context.dir(), o, out);
            if (o.quiet()) {
                out.write(Map.of("stream", image.id().toString() + "\n"));
            }
        } catch (KilnException | UncheckedIOException e) {
            out.fail(e);
        }
    }

    private void commit(Exchange x) {
        String container = x.query("container", "");
        if (container.isEmpty()) {
            throw KilnException.invalid("commit needs container=");
        }
        String repo = x.query("repo", "");
        String tag = x.query("tag", "");
        String ref = repo.isEmpty() ? null : tag.isEmpty() ? repo : repo + ":" + tag;
        Map<String, Object> config = new LinkedHashMap<>();
        try {
            var body = x.body().readAllBytes();
            if (body.length > 0) {
                config = DockerApi.JSON.readValue(body, new TypeReference<>() { });
            }
        } catch (IOException e) {
            throw KilnException.invalid("invalid JSON request body: " + e.getMessage());
        }
        Image image = Commit.commit(engine, container, ref, x.query("comment"), x.query("author"),
                x.queryAll("changes"), config);
        x.json(201, Map.of("Id", image.id().toString()));
    }

    private static Map<String, String> jsonMap(String json, String what) {
        if (json == null || json.isEmpty()) {
            return Map.of();
        }
        try {
            Map<String, String> m = DockerApi.JSON.readValue(json, new TypeReference<LinkedHashMap<String, String>>() {
            });
            return m == null ? Map.of() : m;
        } catch (IOException e) {
            throw KilnException.invalid("invalid " + what + ": " + e.getMessage().lines().findFirst().orElse(""));
        }
    }

    /** The JSON messages of a build; the status (200) goes with the first, so an early error is an HTTP error. */
    private static final class Stream implements BuildOutput {
        private final Exchange x;
        private OutputStream out;

        Stream(Exchange x) {
            this.x = x;
        }

        @Override
        public void text(String text) {
            write(Map.of("stream", text));
        }

        @Override
        public void imageId(String id) {
            write(Map.of("aux", Map.of("ID", id)));
        }

        synchronized void write(Object message) {
            try {
                if (out == null) {
                    x.status(200);
                    x.contentType("application/json");
                    out = x.out();
                }
                byte[] line = DockerApi.JSON.writeValueAsBytes(message);
                byte[] whole = java.util.Arrays.copyOf(line, line.length + 1);
                whole[line.length] = '\n';
                out.write(whole); // one write per message: a client reading by lines never sees half of one
                out.flush();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        void fail(RuntimeException e) {
            String message = e instanceof UncheckedIOException u ? String.valueOf(u.getCause().getMessage())
                    : e.getMessage();
            if (out == null) {
                throw e; // nothing streamed yet: an HTTP error, which the client shows as one
            }
            write(Map.of("errorDetail", Map.of("message", message), "error", message));
        }
    }
}
