package dev.kiln.image;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

import java.util.List;
import java.util.Map;

/**
 * The parts of an OCI image configuration kiln uses. Unknown fields are ignored on read; the original bytes stay in
 * the content store, so nothing is lost by reading only this much.
 */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
@JsonIgnoreProperties(ignoreUnknown = true)
public record ImageConfig(String created, String architecture, String os, String variant,
                          @JsonProperty("config") Runtime config, RootFs rootfs, List<History> history) {

    @JsonInclude(JsonInclude.Include.NON_EMPTY)
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Runtime(@JsonProperty("User") String user,
                          @JsonProperty("Env") List<String> env,
                          @JsonProperty("Entrypoint") List<String> entrypoint,
                          @JsonProperty("Cmd") List<String> cmd,
                          @JsonProperty("WorkingDir") String workingDir,
                          @JsonProperty("Labels") Map<String, String> labels,
                          @JsonProperty("StopSignal") String stopSignal,
                          @JsonProperty("ExposedPorts") Map<String, Object> exposedPorts,
                          @JsonProperty("Volumes") Map<String, Object> volumes) {
    }

    @JsonIgnoreProperties(ignoreUnknown = true)
    public record RootFs(String type, @JsonProperty("diff_ids") List<String> diffIds) {
    }

    @JsonInclude(JsonInclude.Include.NON_EMPTY)
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record History(String created, @JsonProperty("created_by") String createdBy, String comment,
                          @JsonProperty("empty_layer") Boolean emptyLayer) {
    }
}
