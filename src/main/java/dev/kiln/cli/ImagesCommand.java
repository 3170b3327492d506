package dev.kiln.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.engine.Images;
import dev.kiln.image.Image;
import dev.kiln.image.ImageRef;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
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
    int run(Images images) throws Exception {
        List<Image> list = images.list();
        if (quiet) {
            Set<String> ids = new LinkedHashSet<>();
            list.forEach(i -> ids.add(noTrunc ? i.id().toString() : i.id().shortId()));
            ids.forEach(out()::println);
            return 0;
        }
        switch (format) {
            case "json" -> {
                ObjectMapper json = new ObjectMapper();
                for (Image i : list) {
                    out().println(json.writeValueAsString(row(i)));
                }
            }
            case "table" -> {
                Table t = new Table("REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE");
                for (Image i : list) {
                    Map<String, Object> r = row(i);
                    t.add(r.get("Repository"), r.get("Tag"), r.get("Digest"),
                            noTrunc ? i.id().toString() : i.id().shortId(), Humane.since(i.created()),
                            Humane.size(i.size()));
                }
                t.print(out());
            }
            default -> throw dev.kiln.KilnException.invalid("unknown --format \"" + format + "\" (use table or json)");
        }
        return 0;
    }

    private static Map<String, Object> row(Image i) {
        ImageRef ref = i.ref();
        String familiar = ref.familiar();
        String repo = ref.tag() != null ? familiar.substring(0, familiar.length() - ref.tag().length() - 1)
                : familiar.substring(0, familiar.indexOf('@'));
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("ID", i.id().toString());
        r.put("Repository", repo);
        r.put("Tag", ref.tag() == null ? "<none>" : ref.tag());
        r.put("Digest", (i.repoDigest() != null ? i.repoDigest() : i.manifestDigest()).toString());
        r.put("CreatedAt", i.created());
        r.put("Size", i.size());
        return r;
    }
}
