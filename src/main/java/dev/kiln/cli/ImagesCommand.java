package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * {@code kiln images [-q] [--format json]}. Unlike Docker, the DIGEST column is shown by default: the digest is what
 * tells two pulls of a tag apart, and kiln users check it.
 */
@Command(name = "images", description = "List images")
final class ImagesCommand extends Subcommand {

    @Option(names = {"-q", "--quiet"}, description = "Only show image IDs")
    boolean quiet;

    @Option(names = "--format", paramLabel = "FORMAT", description = "'table' (default) or 'json' (one object per line)")
    String format = "table";

    @Option(names = "--digests", description = "Show digests (always on; accepted for Docker compatibility)")
    boolean digests;

    @Option(names = "--no-trunc", description = "Do not shorten image IDs")
    boolean noTrunc;

    @Override
    int run(DaemonClient daemon) throws Exception {
        if (!format.equals("table") && !format.equals("json")) {
            throw KilnException.invalid("unknown --format \"" + format + "\" (use table or json)");
        }
        JsonNode list;
        try (DaemonClient.Response r = daemon.call("GET", "/v1/images").ok()) {
            list = r.json();
        }
        if (quiet) {
            Set<String> ids = new LinkedHashSet<>();
            list.forEach(i -> ids.add(id(i)));
            ids.forEach(out()::println);
            return 0;
        }
        if (format.equals("json")) {
            for (JsonNode i : list) {
                out().println(DaemonClient.JSON.writeValueAsString(row(i)));
            }
            return 0;
        }
        Table t = new Table("REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE");
        for (JsonNode i : list) {
            Map<String, Object> r = row(i);
            t.add(r.get("Repository"), r.get("Tag"), r.get("Digest"), id(i),
                    Humane.since(i.path("created").asText(null)), Humane.size(i.path("size").asLong()));
        }
        t.print(out());
        return 0;
    }

    private String id(JsonNode i) {
        String id = i.path("id").asText();
        return noTrunc ? id : id.substring(7, 19);
    }

    private static Map<String, Object> row(JsonNode i) {
        String familiar = i.path("familiar").asText();
        String tag = i.path("tag").isNull() || i.path("tag").isMissingNode() ? null : i.path("tag").asText();
        String repo = tag != null ? familiar.substring(0, familiar.length() - tag.length() - 1)
                : familiar.replaceFirst("@.*$", "");
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("ID", i.path("id").asText());
        r.put("Repository", repo);
        r.put("Tag", tag == null ? "<none>" : tag);
        r.put("Digest", i.path("digest").asText());
        r.put("CreatedAt", i.path("created").asText(null));
        r.put("Size", i.path("size").asLong());
        return r;
    }
}
