package dev.kiln.engine.volume;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;

import java.util.Map;

/**
 * A named volume of kiln's local driver: a directory, {@code ROOT/volumes/NAME/_data}, described by
 * {@code ROOT/volumes/NAME/volume.json} (this record). {@code anonymous}: made for one sandbox's mount with no name
 * given (an image's {@code VOLUME}, {@code -v /path}), removed with that sandbox by {@code rm -v}.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record Volume(String name, long createdAt, Map<String, String> labels, Map<String, String> options,
                     boolean anonymous) {

    public Volume {
        labels = labels == null ? Map.of() : Map.copyOf(labels);
        options = options == null ? Map.of() : Map.copyOf(options);
    }
}
