package dev.kiln.image;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.Map;

/** An OCI content descriptor: what a manifest, index or layout points at. */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
@JsonIgnoreProperties(ignoreUnknown = true)
public record Descriptor(String mediaType, String digest, long size, Platform platform,
                         Map<String, String> annotations) {

    public static final String REF_NAME = "org.opencontainers.image.ref.name";

    public Descriptor(String mediaType, Digest digest, long size) {
        this(mediaType, digest.toString(), size, null, null);
    }

    /** The validated digest; a descriptor with a bad digest is refused here, before anything is fetched. */
    public Digest contentDigest() {
        return Digest.parse(digest);
    }

    public Descriptor withAnnotations(Map<String, String> a) {
        return new Descriptor(mediaType, digest, size, platform, a);
    }
}
