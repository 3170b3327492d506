package dev.kiln.api.v1;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;
import java.util.Map;

/**
 * {@code POST /v1/sandboxes}: what {@code kiln create/run} asks for, after the CLI resolved what only the caller can
 * (its environment for {@code -e K}, {@code --env-file} contents). A null list means "the image's"; an empty
 * {@code entrypoint} means "none" (Docker's {@code --entrypoint ""}). {@code publish}: {@code -p} values as typed;
 * {@code network}: {@code none}, {@code host}, {@code user} (vm), {@code kiln} (also {@code bridge}) or a network
 * made with {@code kiln network create}; null: the isolation's default. {@code publishAll}: {@code -P}.
 * {@code extraHosts}: {@code --add-host NAME:ADDRESS}. {@code kernel}, {@code diskSize}: the vm isolation's
 * {@code --kernel} and {@code --disk-size} (null/0: kilnd's defaults).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = false)
public record CreateRequest(String image, String name, List<String> cmd, List<String> entrypoint, List<String> env,
                            String workdir, String user, String hostname, String isolation, String runtime,
                            long nanoCpus, long memory, long pidsLimit, boolean readOnly, Map<String, String> labels,
                            boolean tty, boolean openStdin, boolean autoRemove, String platform,
                            List<String> publish, String network, boolean publishAll, List<String> dns,
                            List<String> dnsSearch, List<String> dnsOptions, List<String> extraHosts, String kernel,
                            long diskSize, Supervision supervision) {
}
