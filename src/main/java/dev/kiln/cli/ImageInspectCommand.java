package dev.kiln.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.kiln.engine.Images;
import dev.kiln.image.Image;
import dev.kiln.image.ImageConfig;
import dev.kiln.image.Manifest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@code kiln image inspect REF...}: a JSON array shaped like Docker's image inspect. */
@Command(name = "inspect", description = "Show details of images as JSON")
class ImageInspectCommand extends Subcommand {

    @Parameters(arity = "1..*", paramLabel = "REF")
    List<String> refs;

    @Override
    int run(Images images) throws Exception {
        List<Map<String, Object>> out = new ArrayList<>();
        for (String ref : refs) {
            out.add(describe(images, images.resolve(ref)));
        }
        out().println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(out));
        return 0;
    }

    static Map<String, Object> describe(Images images, Image image) {
        ImageConfig c = images.config(image);
        Manifest m = images.manifest(image);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("Id", image.id().toString());
        r.put("RepoTags", images.store().namesOf(image.id()).stream().map(i -> i.ref().familiar()).toList());
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
        r.put("Config", c.config());
        r.put("RootFS", Map.of("Type", "layers", "Layers", c.rootfs() == null ? List.of() : c.rootfs().diffIds()));
        r.put("Layers", m.layers());
        return r;
    }
}
