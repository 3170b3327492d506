package dev.kiln.api.docker;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import dev.kiln.api.v1.RunFlags;
import dev.kiln.engine.SandboxConfig;
import dev.kiln.isolation.Isolators;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Docker's {@code POST /containers/create} body (Config with HostConfig inside) → the engine's {@link SandboxConfig}.
 * What kiln cannot honour is refused with a 400 naming it — never dropped silently.
 */
final class CreateTranslator {
    private CreateTranslator() {
    }

    static SandboxConfig translate(ContainerCreateBody body, String name, String platform, Isolators isolators) {
        String image = text(body.image());
        if (image == null) {
            throw KilnException.invalid("Config.Image is required");
        }
        ContainerCreateBody.HostConfig host = body.host();
        refuseUnsupported(body, host);
        List<String> entrypoint = body.entrypoint();
        if (entrypoint != null && entrypoint.size() == 1 && entrypoint.getFirst().isEmpty()) {
            entrypoint = List.of(); // --entrypoint "": none
        }
        String isolation = text(host.isolation()); // "default" is kept: inspect shows it back, as Docker does
        if (isolation != null && !isolation.equals("default") && isolators.find(isolation).isEmpty()) {
            throw KilnException.invalid("kiln does not support isolation \"" + isolation + "\" (use "
                    + isolators.names(i -> true) + ")");
        }
        long pids = host.pidsLimit() == null ? 0 : host.pidsLimit();
        return new SandboxConfig(image, name == null || name.isEmpty() ? null : name,
                body.cmd(), entrypoint, body.env(), text(body.workingDir()),
                text(body.user()), text(body.hostname()), isolation, text(host.runtime()),
                host.nanoCpus(), host.memory(), pids < 0 ? 0 : pids,
                host.readonlyRootfs(), labels(body.labels()),
                body.tty(), body.openStdin(),
                host.autoRemove(), platform == null || platform.isEmpty() ? null : platform,
                publish(body, host), network(host), host.publishAllPorts(),
                host.dns(), host.dnsSearch(), host.dnsOptions(), host.extraHosts(), null, 0,
                DockerMounts.translate(body, host),
                dev.kiln.api.RunFlagsTranslator.settings(flags(body, host)), supervision(body, host));
    }

    /**
     * The HostConfig and Config fields kiln honours through {@link dev.kiln.isolation.RunSettings}, as the CLI's
     * {@link RunFlags} (one translator checks both faces' values); the endpoint's aliases and IPv4 address are those
     * of the network the container is created on.
     */
    static RunFlags flags(ContainerCreateBody body, ContainerCreateBody.HostConfig host) {
        List<String> ulimits = host.ulimits() == null ? null : host.ulimits().stream()
                .map(u -> u.name() + "=" + u.soft() + ":" + u.hard()).toList();
        List<String> devices = host.devices() == null ? null : host.devices().stream()
                .map(d -> d.pathOnHost() + ":" + (text(d.pathInContainer()) == null ? d.pathOnHost()
                        : d.pathInContainer()) + ":" + (text(d.cgroupPermissions()) == null ? "rwm"
                        : d.cgroupPermissions())).toList();
        ContainerCreateBody.EndpointSettings endpoint = endpoint(body, host);
        List<String> aliases = endpoint == null ? null : endpoint.aliases();
        String ip = endpoint == null || endpoint.ipamConfig() == null ? null
                : text(endpoint.ipamConfig().ipv4Address());
        String log = host.logConfig() == null ? null : text(host.logConfig().type());
        // Docker's clients send -1 for "unset" (MemorySwappiness) and 0 for "none" (StopTimeout is a pointer)
        Long swappiness = host.memorySwappiness() == null || host.memorySwappiness() == -1 ? null
                : host.memorySwappiness();
        return new RunFlags(Boolean.TRUE.equals(host.init()), host.capAdd(), host.capDrop(), host.securityOpt(),
                ulimits, devices, host.shmSize(), host.sysctls(), host.groupAdd(), host.pidMode(), host.utsMode(),
                host.cgroupnsMode(), host.cpuShares(), host.cpusetCpus(), host.memorySwap(), swappiness,
                host.deviceCgroupRules(), body.stopTimeout(), log, aliases, ip);
    }

    /** The EndpointsConfig entry of the network the container is created on (NetworkMode's), if any. */
    private static ContainerCreateBody.EndpointSettings endpoint(ContainerCreateBody body,
                                                                 ContainerCreateBody.HostConfig host) {
        Map<String, ContainerCreateBody.EndpointSettings> endpoints = body.networkingConfig() == null ? null
                : body.networkingConfig().endpointsConfig();
        if (endpoints == null) {
            return null;
        }
        String network = text(host.networkMode());
        String mode = network == null || network.equals("default") ? "bridge" : network;
        for (var e : endpoints.entrySet()) {
            String n = e.getKey().equals("default") ? "bridge" : e.getKey();
            if (n.equals(mode)) {
                return e.getValue();
            }
        }
        return null;
    }

    /** HostConfig.RestartPolicy and Config.Healthcheck; null when neither asks for anything. */
    static dev.kiln.engine.Supervision supervision(ContainerCreateBody body, ContainerCreateBody.HostConfig host) {
        ContainerCreateBody.RestartPolicy p = host.restartPolicy();
        String name = p == null ? null : text(p.name());
        dev.kiln.engine.RestartPolicy restart = name == null ? dev.kiln.engine.RestartPolicy.NO
                : new dev.kiln.engine.RestartPolicy(name, (int) Math.min(Integer.MAX_VALUE, p.maximumRetryCount()));
        ContainerCreateBody.HealthConfig h = body.healthcheck();
        dev.kiln.engine.Healthcheck health = h == null ? null : new dev.kiln.engine.Healthcheck(h.test(),
                h.interval(), h.timeout(), h.startPeriod(), h.retries());
        return restart.none() && health == null ? null : new dev.kiln.engine.Supervision(restart, health);
    }

    /**
     * HostConfig.PortBindings ({@code {"8080/tcp":[{"HostIp":"","HostPort":"0"}]}}) as kiln's {@code -p} specs. With
     * PublishAllPorts, Config.ExposedPorts that have no binding are published on a free port too (kiln's own
     * {@code publishAll} covers the image's EXPOSE, which Docker's -P also publishes). Without it, ExposedPorts alone
     * publish nothing, as in Docker.
     */
    static List<String> publish(ContainerCreateBody config, ContainerCreateBody.HostConfig host) {
        List<String> specs = new ArrayList<>();
        List<String> bound = new ArrayList<>();
        if (host.portBindings() != null) {
            host.portBindings().forEach((key, list) -> {
                String port = containerPort(key);
                bound.add(port);
                if (list == null || list.isEmpty()) {
                    specs.add(port); // a binding with no host side: any free port, as Docker does
                    return;
                }
                for (ContainerCreateBody.PortBinding b : list) {
                    String ip = b == null ? null : text(b.hostIp());
                    String hostPort = b == null ? null : text(b.hostPort());
                    if (hostPort != null && !hostPort.chars().allMatch(Character::isDigit)) {
                        throw KilnException.invalid("kiln does not support host port \"" + hostPort + "\" for " + port
                                + " (ranges are not supported yet: give one port, or none for a free one)");
                    }
                    if (ip != null && ip.contains(":")) {
                        throw KilnException.invalid("kiln does not support IPv6 host address " + ip + " for " + port
                                + " yet");
                    }
                    specs.add((ip == null ? "" : ip) + ":" + (hostPort == null || hostPort.equals("0") ? "" : hostPort)
                            + ":" + port);
                }
            });
        }
        if (host.publishAllPorts() && config.exposedPorts() != null) {
            config.exposedPorts().keySet().forEach(key -> {
                String port = containerPort(key);
                if (!bound.contains(port)) {
                    specs.add(port);
                }
            });
        }
        return specs.isEmpty() ? null : specs;
    }

    /** Docker's {@code PORT[/PROTO]} key, checked: kiln publishes tcp and udp. */
    private static String containerPort(String key) {
        String port = key.contains("/") ? key : key + "/tcp";
        if (!port.matches("\\d{1,5}/(tcp|udp)")) {
            throw KilnException.invalid("kiln does not support publishing \"" + key + "\" (PORT/tcp or PORT/udp)");
        }
        return port;
    }

    /**
     * HostConfig.NetworkMode as kiln's {@code network}: Docker's {@code default} and {@code bridge} are kiln's default
     * (the kiln bridge where the isolation can join one), {@code none}, {@code host} and network names pass through;
     * {@code container:NAME} is refused by kiln.
     */
    static String network(ContainerCreateBody.HostConfig host) {
        String mode = text(host.networkMode());
        return mode == null || mode.equals("default") || mode.equals("bridge") ? null : mode;
    }

    /** HostConfig and Config fields kiln's Docker face does not implement yet, when they ask for something. */
    private static void refuseUnsupported(ContainerCreateBody config, ContainerCreateBody.HostConfig host) {
        List<String> refused = new ArrayList<>();
        if (nonEmpty(host.volumesFrom())) {
            refused.add("--volumes-from (name the volumes with -v instead)");
        }
        // a sandbox is created on one network: EndpointsConfig may only name the one NetworkMode names (the CLI
        // sends it for --network NAME); more join with network connect. Its Aliases and IPv4Address are honoured.
        String network = text(host.networkMode());
        String mode = network == null || network.equals("default") ? "bridge" : network;
        Map<String, ContainerCreateBody.EndpointSettings> endpoints = config.networkingConfig() == null ? null
                : config.networkingConfig().endpointsConfig();
        if (endpoints != null) {
            endpoints.forEach((key, e) -> {
                String n = key.equals("default") ? "bridge" : key;
                if (!n.equals(mode)) {
                    refused.add("connecting to a second network (\"" + key + "\")");
                } else if (e != null && nonEmpty(e.links())) {
                    refused.add("--link on a network (use the network's names: every sandbox on it resolves by "
                            + "name and alias)");
                } else if (e != null && e.ipamConfig() != null && (text(e.ipamConfig().ipv6Address()) != null
                        || nonEmpty(e.ipamConfig().linkLocalIps()))) {
                    refused.add("--ip6 and --link-local-ip");
                } else if (e != null && text(e.macAddress()) != null) {
                    refused.add("--mac-address");
                } else if (e != null && nonEmpty(e.driverOpts())) {
                    refused.add("endpoint DriverOpts");
                }
            });
        }
        if (host.privileged()) {
            refused.add("--privileged");
        }
        if (text(config.macAddress()) != null) {
            refused.add("--mac-address");
        }
        if (nonEmpty(host.links())) {
            refused.add("--link");
        }
        String ipc = text(host.ipcMode());
        if (ipc != null && !List.of("private", "none", "shareable").contains(ipc)) {
            refused.add("--ipc namespace sharing");
        }
        if (text(host.usernsMode()) != null) {
            refused.add("--userns");
        }
        if (host.cpuQuota() > 0) {
            refused.add("--cpu-quota (use --cpus)");
        }
        if (host.logConfig() != null && nonEmpty(host.logConfig().config())) {
            refused.add("log options (--log-opt)");
        }
        if (!refused.isEmpty()) {
            throw KilnException.invalid("kiln does not support " + String.join(", ", refused) + " yet");
        }
    }

    private static boolean nonEmpty(java.util.Collection<?> c) {
        return c != null && !c.isEmpty();
    }

    private static boolean nonEmpty(Map<?, ?> m) {
        return m != null && !m.isEmpty();
    }

    private static boolean nonEmpty(JsonNode n) {
        return n != null && !n.isNull() && ((n.isContainerNode() && !n.isEmpty()) || (n.isTextual()
                && !n.asText().isEmpty()));
    }

    /** Docker's empty string is "not given". */
    static String text(String s) {
        return s == null || s.isEmpty() ? null : s;
    }

    private static Map<String, String> labels(Map<String, String> labels) {
        if (labels == null || labels.isEmpty()) {
            return null;
        }
        Map<String, String> out = new LinkedHashMap<>();
        labels.forEach((k, v) -> out.put(k, v == null ? "" : v)); // Go decodes a null string as ""
        return out;
    }
}
