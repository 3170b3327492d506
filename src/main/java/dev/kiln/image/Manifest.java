package dev.kiln.image;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;
import java.util.Map;

/** An image manifest (OCI or Docker v2 schema 2, which share this shape): one config and ordered layers. */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
@JsonIgnoreProperties(ignoreUnknown = true)
public record Manifest(int schemaVersion, String mediaType, Descriptor config,
                       @JsonInclude(JsonInclude.Include.ALWAYS) List<Descriptor> layers,
                       Map<String, String> annotations) {

    /**
     * An image may have no layer (scratch and metadata only, as Docker builds it): its list is written, empty, as
     * the OCI manifest requires the field, and one read without it has none rather than null.
     */
    public Manifest {
        layers = layers == null ? List.of() : layers;
    }

    public long totalSize() {
        return config.size() + layers.stream().mapToLong(Descriptor::size).sum();
    }
}
