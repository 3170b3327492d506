package dev.kiln.api.docker;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;

import java.util.List;
import java.util.Map;

/**
 * Docker's {@code POST /containers/create} body (the container Config with HostConfig and NetworkingConfig inside),
 * typed as the Engine API types it: the fields kiln reads or refuses, each with Docker's JSON type, so a wrong type
 * is a 400 naming the field (see {@link dev.kiln.api.JsonBody}). Fields kiln neither reads nor refuses are ignored,
 * as before. Cmd and Entrypoint are Docker's StrSlice: a string or an array of strings.
 */
@JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
@JsonIgnoreProperties(ignoreUnknown = true)
record ContainerCreateBody(String image, String hostname, String user, String workingDir,
                           @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY) List<String> cmd,
                           @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY) List<String> entrypoint,
                           List<String> env, Map<String, String> labels, boolean tty, boolean openStdin,
                           Map<String, JsonNode> exposedPorts, Map<String, JsonNode> volumes, HostConfig hostConfig,
                           NetworkingConfig networkingConfig, Integer stopTimeout, String macAddress,
                           HealthConfig healthcheck) {

    /** An absent HostConfig is Docker's defaults. */
    HostConfig host() {
        return hostConfig == null ? HostConfig.DEFAULTS : hostConfig;
    }

    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record HostConfig(String isolation, String runtime, long nanoCpus, long memory, Long pidsLimit,
                      boolean readonlyRootfs, boolean autoRemove, Map<String, List<PortBinding>> portBindings,
                      boolean publishAllPorts, String networkMode, List<String> dns, List<String> dnsSearch,
                      List<String> dnsOptions, List<String> extraHosts,
                      // refused when they ask for something (CreateTranslator.refuseUnsupported)
                      List<String> binds, List<JsonNode> mounts, List<String> volumesFrom,
                      Map<String, String> tmpfs, boolean privileged, List<String> capAdd, List<String> capDrop,
                      List<DeviceMapping> devices, List<String> links, RestartPolicy restartPolicy, Boolean init,
                      String pidMode, String ipcMode, String usernsMode, @JsonProperty("UTSMode") String utsMode,
                      long memorySwap, long cpuShares, long cpuQuota, String cpusetCpus, List<String> securityOpt,
                      LogConfig logConfig,
                      // honoured through RunSettings (CreateTranslator.flags)
                      List<Ulimit> ulimits, long shmSize, Map<String, String> sysctls, List<String> groupAdd,
                      String cgroupnsMode, Long memorySwappiness, List<String> deviceCgroupRules) {
        static final HostConfig DEFAULTS = new HostConfig(null, null, 0, 0, null, false, false, null, false, null,
                null, null, null, null, null, null, null, null, false, null, null, null, null, null, null, null,
                null, null, null, 0, 0, 0, null, null, null, null, 0, null, null, null, null, null);
    }

    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record Ulimit(String name, long soft, long hard) {
    }

    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record DeviceMapping(String pathOnHost, String pathInContainer, String cgroupPermissions) {
    }

    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record PortBinding(String hostIp, String hostPort) {
    }

    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record RestartPolicy(String name, long maximumRetryCount) {
    }

    /** Config.Healthcheck: durations in nanoseconds. */
    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record HealthConfig(List<String> test, long interval, long timeout, long startPeriod, int retries) {
    }

    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record LogConfig(String type, Map<String, String> config) {
    }

    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record NetworkingConfig(Map<String, EndpointSettings> endpointsConfig) {
    }

    @JsonNaming(PropertyNamingStrategies.UpperCamelCaseStrategy.class)
    @JsonIgnoreProperties(ignoreUnknown = true)
    record EndpointSettings(@JsonProperty("IPAMConfig") IpamConfig ipamConfig, List<String> aliases,
                            List<String> links, String macAddress, Map<String, String> driverOpts) {
    }

    @JsonIgnoreProperties(ignoreUnknown = true)
    record IpamConfig(@JsonProperty("IPv4Address") String ipv4Address, @JsonProperty("IPv6Address") String ipv6Address,
                      @JsonProperty("LinkLocalIPs") List<String> linkLocalIps) {
    }
}
