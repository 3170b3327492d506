package dev.kiln.build;

import java.util.List;
import java.util.Map;

/**
 * What one build is asked for, as {@code docker build} and {@code kiln build} say it.
 *
 * <ul>
 * <li>{@code dockerfile}: the Dockerfile's path inside the context (Docker's {@code dockerfile}; default
 * {@code Dockerfile}).
 * <li>{@code tags}: names the result gets ({@code -t}, several); {@code buildArgs}: {@code --build-arg}, a null value
 * meaning "from the client's environment, which had none"; {@code target}: the last stage to build.
 * <li>{@code noCache}, {@code pull} (pull FROM images even when present), {@code labels} (set on the result),
 * {@code quiet} (only the image ID).
 * <li>{@code network}: RUN's network ({@code default}, {@code none}, {@code host}, or a network's name);
 * {@code isolation}: RUN's isolation ({@code container}, {@code gvisor}, {@code vm}; null or {@code default}:
 * kilnd's); {@code platform}: {@code --platform}.
 * </ul>
 */
public record BuildOptions(String dockerfile, List<String> tags, Map<String, String> buildArgs, String target,
                           boolean noCache, boolean pull, Map<String, String> labels, boolean quiet, String network,
                           String isolation, String platform) {

    public BuildOptions {
        dockerfile = dockerfile == null || dockerfile.isBlank() ? "Dockerfile" : dockerfile;
        tags = tags == null ? List.of() : List.copyOf(tags);
        buildArgs = buildArgs == null ? Map.of() : java.util.Collections.unmodifiableMap(
                new java.util.LinkedHashMap<>(buildArgs));
        labels = labels == null ? Map.of() : Map.copyOf(labels);
        target = target == null || target.isBlank() ? null : target;
        network = network == null || network.isBlank() || network.equals("default") ? null : network;
        isolation = isolation == null || isolation.isBlank() || isolation.equals("default") ? null : isolation;
        platform = platform == null || platform.isBlank() ? null : platform;
    }
}
