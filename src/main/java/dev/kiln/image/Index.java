package dev.kiln.image;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/** An OCI image index or Docker manifest list: manifests per platform. */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
@JsonIgnoreProperties(ignoreUnknown = true)
public record Index(int schemaVersion, String mediaType, List<Descriptor> manifests, Map<String, String> annotations) {

    /** The first manifest for {@code platform}; entries without a platform (e.g. attestations) never match. */
    public Optional<Descriptor> select(Platform platform) {
        return manifests.stream()
                .filter(d -> MediaType.isManifest(d.mediaType()) || d.mediaType() == null)
                .filter(d -> platform.matches(d.platform()))
                .findFirst();
    }
}
