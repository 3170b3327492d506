package dev.kiln.api.docker;

import dev.kiln.api.NetworkView;
import dev.kiln.api.SandboxView;

import dev.kiln.engine.Engine;
import dev.kiln.engine.Sandbox;
import dev.kiln.engine.SandboxConfig;

import dev.kiln.isolation.Isolator;
import dev.kiln.network.KilnNetwork;
import dev.kiln.network.NetworkMode;
import dev.kiln.network.PortMapping;
import dev.kiln.network.UserNetwork;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/** Docker's container documents for a sandbox: {@code GET /containers/{id}/json} and a {@code /containers/json} row. */
final class ContainerView {
    private ContainerView() {
    }

    static final String ZERO_TIME = SandboxView.ZERO_TIME;

    static Map<String, Object> inspect(Engine engine, Sandbox s) {
        SandboxConfig r = s.config();
        Map<String, Object> state = SandboxView.state(s, engine.sandboxes().health(s));
        if (engine.sandboxes().restarting(s)) {
            SandboxView.restarting(state);
        }
        state.put("Error", "");

        Map<String, Object> config = new LinkedHashMap<>();
        config.put("Hostname", r.hostname() != null ? r.hostname() : s.shortId());
        config.put("Domainname", "");
        config.put("User", r.user() == null ? "" : r.user());
        config.put("AttachStdin", false);
        config.put("AttachStdout", false);
        config.put("AttachStderr", false);
        config.put("Tty", r.tty());
        config.put("OpenStdin", r.openStdin());
        config.put("StdinOnce", false);
        config.put("Env", s.process().env());
        config.put("Cmd", r.cmd());
        config.put("Image", s.image());
        config.put("Volumes", DockerMounts.volumes(s));
        config.put("WorkingDir", s.process().cwd());
        config.put("Entrypoint", r.entrypoint());
        config.put("Labels", labels(s));
        dev.kiln.engine.Healthcheck check = dev.kiln.engine.Supervision.of(r).healthcheck();
        if (check != null) {
            Map<String, Object> h = new LinkedHashMap<>();
            h.put("Test", check.test());
            h.put("Interval", check.interval());
            h.put("Timeout", check.timeout());
            h.put("StartPeriod", check.startPeriod());
            h.put("Retries", check.retries());
            config.put("Healthcheck", h);
        }

        Map<String, Object> host = new LinkedHashMap<>();
        host.put("NetworkMode", networkName(engine, s));
        host.put("PortBindings", portBindings(r));
        host.put("PublishAllPorts", r.publishAll());
        host.put("Dns", r.dns() == null ? List.of() : r.dns());
        host.put("DnsSearch", r.dnsSearch() == null ? List.of() : r.dnsSearch());
        host.put("DnsOptions", r.dnsOptions() == null ? List.of() : r.dnsOptions());
        host.put("ExtraHosts", r.extraHosts());
        dev.kiln.engine.RestartPolicy restart = dev.kiln.engine.Supervision.of(r).restart();
        host.put("RestartPolicy", Map.of("Name", restart.name(), "MaximumRetryCount", restart.maximumRetryCount()));
        host.put("AutoRemove", r.autoRemove());
        host.put("Isolation", s.isolation());
        host.put("Runtime", runtime(engine, s));
        host.put("NanoCpus", r.nanoCpus());
        host.put("Memory", r.memory());
        host.put("PidsLimit", r.pidsLimit());
        host.put("ReadonlyRootfs", r.readOnly());
        host.put("Binds", DockerMounts.binds(s));
        host.put("Mounts", DockerMounts.mounts(s));
        host.put("Tmpfs", DockerMounts.tmpfs(s));
        dev.kiln.api.RunSettingsView.hostConfig(r, s.isolation(), host);
        dev.kiln.api.RunSettingsView.config(r, config);

        Set<String> exposed = SandboxView.exposedPorts(engine.images(), s);
        Map<String, Object> exposedPorts = new TreeMap<>();
        exposed.forEach(p -> exposedPorts.put(p, Map.of()));
        portBindings(r).keySet().forEach(p -> exposedPorts.put(p, Map.of()));
        config.put("ExposedPorts", exposedPorts);
        String networkName = networkName(engine, s);
        Map<String, Object> network = SandboxView.networkSettings(engine.sandboxes().network(s), exposed,
                networkName, networkId(engine, networkName));
        network.put("SandboxID", s.running() ? s.id() : "");
        network.put("Networks", SandboxView.networks(engine, s, network.get("Networks"), "bridge", true));

        Map<String, Object> m = new LinkedHashMap<>();
        m.put("Id", s.id());
        m.put("Created", time(s.created()));
        m.put("Path", s.process().args().getFirst());
        m.put("Args", s.process().args().subList(1, s.process().args().size()));
        m.put("State", state);
        m.put("Image", s.imageId());
        m.put("ResolvConfPath", "");
        m.put("HostnamePath", "");
        m.put("HostsPath", "");
        m.put("LogPath", engine.sandboxes().logFile(s).toString());
        m.put("Name", "/" + s.name());
        m.put("RestartCount", s.restarts());
        m.put("Driver", "kiln");
        m.put("Platform", "linux");
        m.put("MountLabel", "");
        m.put("ProcessLabel", "");
        m.put("AppArmorProfile", "");
        m.put("ExecIDs", null);
        m.put("HostConfig", host);
        m.put("GraphDriver", Map.of("Name", "kiln", "Data", Map.of()));
        m.put("Mounts", dev.kiln.api.VolumeView.mounts(engine, s));
        m.put("Config", config);
        m.put("NetworkSettings", network);
        return m;
    }

    static Map<String, Object> row(Engine engine, Sandbox s) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("Id", s.id());
        m.put("Names", List.of("/" + s.name()));
        m.put("Image", s.image());
        m.put("ImageID", s.imageId());
        m.put("Command", String.join(" ", s.process().args()));
        m.put("Created", s.created() / 1000);
        m.put("Ports", SandboxView.portRows(engine.sandboxes().network(s),
                SandboxView.exposedPorts(engine.images(), s)));
        m.put("Labels", labels(s));
        boolean restarting = engine.sandboxes().restarting(s);
        m.put("State", restarting ? "restarting" : status(s));
        m.put("Status", restarting ? SandboxView.restartingStatus(s)
                : SandboxView.humanStatus(s, engine.sandboxes().health(s)));
        String networkName = networkName(engine, s);
        m.put("HostConfig", Map.of("NetworkMode", networkName));
        Map<String, Object> rowNetworks = new LinkedHashMap<>();
        rowNetworks.put(networkName, Map.of("NetworkID", networkId(engine, networkName),
                "IPAddress", engine.sandboxes().network(s).map(a -> a.ipAddress() == null ? "" : a.ipAddress())
                        .orElse("")));
        for (dev.kiln.engine.Sandboxes.Joined j : engine.sandboxes().joined(s)) {
            String name = j.network().equals(KilnNetwork.NAME) ? "bridge" : j.network();
            rowNetworks.put(name, Map.of("NetworkID", networkId(engine, name), "IPAddress", j.attachment()
                    .map(a -> a.ipAddress() == null ? "" : a.ipAddress()).orElse("")));
        }
        m.put("NetworkSettings", Map.of("Networks", rowNetworks));
        m.put("Mounts", dev.kiln.api.VolumeView.mounts(engine, s));
        return m;
    }

    /** HostConfig.NetworkMode and the Networks key as Docker names them: kiln's own network is "bridge". */
    static String networkName(Engine engine, Sandbox s) {
        NetworkMode mode = engine.sandboxes().networkMode(s);
        return mode.bridged() && mode.network().equals(KilnNetwork.NAME) ? "bridge" : mode.display();
    }

    /** A network's Docker id, the one {@code GET /networks} gives it. */
    static String networkId(Engine engine, String name) {
        return List.of("bridge", "host", "none").contains(name) ? NetworkView.id(name)
                : engine.networks().find(name).map(UserNetwork::id).orElse("");
    }

    /** HostConfig.PortBindings as Docker was given them, rebuilt from kiln's -p specs (HostPort "" = any). */
    static Map<String, List<Map<String, String>>> portBindings(SandboxConfig r) {
        Map<String, List<Map<String, String>>> out = new TreeMap<>();
        for (String spec : r.publish() == null ? List.<String>of() : r.publish()) {
            PortMapping p = PortMapping.parse(spec);
            out.computeIfAbsent(p.key(), k -> new ArrayList<>()).add(Map.of("HostIp", p.hostIp(),
                    "HostPort", p.hostPort() == 0 ? "" : Integer.toString(p.hostPort())));
        }
        return out;
    }

    /**
     * The Docker runtime name of a sandbox, as {@code --runtime} accepts it back: its isolation's ({@code runc},
     * {@code runsc}, {@code kiln-vm}), or the one it asked for where that picked another runtime than the isolation's
     * default ({@code firecracker}).
     */
    static String runtime(Engine engine, Sandbox s) {
        Isolator isolator = engine.isolators().named(s.isolation());
        String asked = s.config().runtime();
        boolean other = asked != null && isolator.isolation().runtimes().contains(asked)
                && !isolator.runtime(asked).equals(isolator.runtime(null));
        return other ? asked : isolator.isolation().dockerRuntime();
    }

    static Map<String, String> labels(Sandbox s) {
        return s.config().labels() == null ? Map.of() : s.config().labels();
    }

    static String status(Sandbox s) {
        return SandboxView.status(s);
    }

    static String humanStatus(Sandbox s) {
        return SandboxView.humanStatus(s);
    }

    static String time(long epochMs) {
        return SandboxView.time(epochMs);
    }
}
