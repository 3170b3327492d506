package dev.kiln.build;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.dockerfile.Dockerfile;
import dev.kiln.dockerfile.Instruction;
import dev.kiln.dockerfile.ShellWords;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Sandbox;
import dev.kiln.image.Image;
import dev.kiln.image.ImageRef;
import dev.kiln.image.ImageStore;

import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * {@code kiln commit} and {@code docker commit}: a sandbox's changes become one layer on its image, through the same
 * code as a build's RUN step ({@link ImageState#child}); a running sandbox is paused meanwhile. {@code changes} are
 * Dockerfile instructions applied to the config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR,
 * STOPSIGNAL), as {@code docker commit --change}.
 */
public final class Commit {
    private Commit() {
    }

    /**
     * Commits sandbox {@code ref} as image {@code name} (null: an image known only by its ID, kept under the build
     * cache's repository so listings leave it out, as Docker's dangling images).
     */
    public static Image commit(Engine engine, String ref, String name, String comment, String author,
                               List<String> changes, Map<String, Object> containerConfig) {
        Sandbox s = engine.sandboxes().get(ref);
        Image parent = engine.images().resolve(s.imageId());
        ImageState state = ImageState.of(engine.images(), parent);
        ObjectNode next = state.configCopy();
        ObjectNode rt = (ObjectNode) next.get("config");
        if (author != null && !author.isEmpty()) {
            next.put("author", author);
        }
        for (String change : changes == null ? List.<String>of() : changes) {
            for (String line : change.split("\n")) {
                if (!line.isBlank()) {
                    apply(rt, Dockerfile.parse("--change", line).instructions().getFirst());
                }
            }
        }
        ImageRef target = name != null ? ImageRef.parse(name)
                : ImageRef.parse(ImageStore.BUILD_CACHE + ":commit-" + HexFormat.of().toHexDigits(
                        ThreadLocalRandom.current().nextLong()));
        String createdBy = String.join(" ", s.process().args());
        return engine.sandboxes().withChanges(s.id(), upper -> state.child(engine.images(), next, upper, true, createdBy,
                comment == null || comment.isEmpty() ? null : comment, target));
    }

    private static void apply(ObjectNode rt, Instruction in) {
        Map<String, String> env = new LinkedHashMap<>();
        if (rt.has("Env")) {
            rt.get("Env").forEach(e -> {
                String v = e.asText();
                int eq = v.indexOf('=');
                if (eq > 0) {
                    env.put(v.substring(0, eq), v.substring(eq + 1));
                }
            });
        }
        ShellWords words = new ShellWords('\\', env::get);
        switch (in.keyword()) {
            case "CMD", "ENTRYPOINT" -> {
                ArrayNode list = rt.putArray(in.keyword().equals("CMD") ? "Cmd" : "Entrypoint");
                if (in.execForm()) {
                    in.json().forEach(list::add);
                } else {
                    list.add("/bin/sh").add("-c").add(in.rest());
                }
            }
            case "ENV", "LABEL" -> {
                ObjectNode labels = rt.has("Labels") && rt.get("Labels").isObject() ? (ObjectNode) rt.get("Labels")
                        : null;
                for (String raw : ShellWords.rawWords(in.rest(), '\\')) {
                    int eq = raw.indexOf('=');
                    if (eq <= 0) {
                        throw KilnException.invalid("--change " + in.keyword() + " expects NAME=VALUE, not " + raw);
                    }
                    String k = words.word(raw.substring(0, eq));
                    String v = words.word(raw.substring(eq + 1));
                    if (in.keyword().equals("ENV")) {
                        env.put(k, v);
                    } else {
                        if (labels == null) {
                            labels = rt.putObject("Labels");
                        }
                        labels.put(k, v);
                    }
                }
                if (in.keyword().equals("ENV")) {
                    ArrayNode list = rt.putArray("Env");
                    env.forEach((k, v) -> list.add(k + "=" + v));
                }
            }
            case "EXPOSE" -> {
                ObjectNode ports = rt.has("ExposedPorts") && rt.get("ExposedPorts").isObject()
                        ? (ObjectNode) rt.get("ExposedPorts") : rt.putObject("ExposedPorts");
                for (String p : words.words(in.rest())) {
                    ports.putObject(p.contains("/") ? p.toLowerCase(Locale.ROOT) : p + "/tcp");
                }
            }
            case "VOLUME" -> {
                ObjectNode vols = rt.has("Volumes") && rt.get("Volumes").isObject() ? (ObjectNode) rt.get("Volumes")
                        : rt.putObject("Volumes");
                (in.execForm() ? in.json() : words.words(in.rest())).forEach(vols::putObject);
            }
            case "USER" -> rt.put("User", words.word(in.rest()));
            case "WORKDIR" -> rt.put("WorkingDir", words.word(in.rest()));
            case "STOPSIGNAL" -> rt.put("StopSignal", words.word(in.rest()));
            default -> throw KilnException.invalid("--change " + in.keyword() + " is not supported (CMD, ENTRYPOINT, "
                    + "ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL are)");
        }
    }
}
