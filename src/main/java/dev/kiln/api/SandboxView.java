package dev.kiln.api;

import dev.kiln.KilnException;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Images;
import dev.kiln.engine.Sandbox;
import dev.kiln.engine.SandboxConfig;
import dev.kiln.engine.SandboxState;
import dev.kiln.engine.Sandboxes;
import dev.kiln.image.Digest;
import dev.kiln.network.Attachment;
import dev.kiln.network.KilnNetwork;
import dev.kiln.network.PortMapping;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/** Docker-shaped views of a sandbox: the inspect document and the list row; also the Docker face's wording. */
public final class SandboxView {
    private SandboxView() {
    }

    public static final String ZERO_TIME = "0001-01-01T00:00:00Z";

    /**
     * Docker's NetworkSettings, shared by both faces: the sandbox's address on its network, and Ports with every
     * published port ({@code {"8080/tcp":[{"HostIp":"0.0.0.0","HostPort":"32768"}]}}) and, as null, each port the
     * image exposes without publishing it. {@code networkName} keys {@code Networks} (Docker calls kiln's own
     * network "bridge"); {@code networkId} gives each endpoint its network's id.
     */
    public static Map<String, Object> networkSettings(Optional<Attachment> network, Collection<String> exposed,
                                                      String networkName, String networkId) {
        Attachment a = network.orElse(null);
        Map<String, Object> n = new LinkedHashMap<>();
        n.put("Bridge", "");
        n.put("SandboxKey", a == null ? "" : a.netns());
        n.put("Ports", ports(a, exposed));
        Map<String, Object> endpoint = endpoint(a);
        n.putAll(endpoint);
        Map<String, Object> attached = new LinkedHashMap<>(endpoint);
        attached.put("NetworkID", networkId);
        attached.put("EndpointID", a == null ? "" : a.sandboxId());
        n.put("Networks", networkName == null ? Map.of() : Map.of(networkName, attached));
        return n;
    }

    /**
     * A user network's Aliases on Docker's face: the configured ones and the short ID, which the network's resolver
     * answers too, as Docker showed them up to API 1.44 (1.45 moved the ID to DNSNames). Kept at 1.45: docker-compose
     * 1.x looks for the short ID there to tell that a container it created already carries its aliases, else it
     * disconnects it from the network it was created on, which kiln refuses.
     */
    private static List<String> withShortId(List<String> aliases, Sandbox s) {
        List<String> all = new ArrayList<>(aliases == null ? List.of() : aliases);
        if (!all.contains(s.shortId())) {
            all.add(s.shortId());
        }
        return all;
    }

    /**
     * NetworkSettings.Networks: the first network's endpoint with its Aliases and IPAMConfig, then each network
     * joined with connect, as Docker lists every network a container is on.
     */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> networks(Engine engine, Sandbox s, Object first, String standardName,
                                               boolean shortIdAlias) {
        Map<String, Object> out = new LinkedHashMap<>();
        ((Map<String, Object>) first).forEach((name, endpoint) -> {
            Map<String, Object> e = new LinkedHashMap<>((Map<String, Object>) endpoint);
            RunSettingsView.endpoint(s.config(), e);
            if (shortIdAlias && !List.of(standardName, "none", "host").contains(name)) {
                e.put("Aliases", withShortId((List<String>) e.get("Aliases"), s));
            }
            out.put(name, e);
        });
        for (dev.kiln.engine.Sandboxes.Joined j : engine.sandboxes().joined(s)) {
            String name = j.network().equals(KilnNetwork.NAME) ? standardName : j.network();
            var a = j.attachment().orElse(null);
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("IPAMConfig", j.ip() == null ? null : Map.of("IPv4Address", j.ip()));
            e.put("Aliases", shortIdAlias && !j.network().equals(KilnNetwork.NAME) ? withShortId(j.aliases(), s)
                    : j.aliases().isEmpty() ? null : j.aliases());
            e.put("NetworkID", j.network().equals(KilnNetwork.NAME) ? NetworkView.id("bridge")
                    : engine.networks().find(j.network()).map(dev.kiln.network.UserNetwork::id).orElse(""));
            e.put("EndpointID", a == null ? "" : a.sandboxId() + "-" + a.ifname());
            e.put("Gateway", a == null || a.gateway() == null ? "" : a.gateway());
            e.put("IPAddress", a == null || a.ipAddress() == null ? "" : a.ipAddress());
            e.put("IPPrefixLen", a == null ? 0 : a.prefixLength());
            e.put("MacAddress", a == null || a.macAddress() == null ? "" : a.macAddress());
            out.put(name, e);
        }
        return out;
    }

    /** IPAddress, IPPrefixLen, Gateway, MacAddress: empty while the sandbox is on no network. */
    private static Map<String, Object> endpoint(Attachment a) {
        Map<String, Object> n = new LinkedHashMap<>();
        n.put("IPAddress", a == null || a.ipAddress() == null ? "" : a.ipAddress());
        n.put("IPPrefixLen", a == null ? 0 : a.prefixLength());
        n.put("Gateway", a == null || a.gateway() == null ? "" : a.gateway());
        n.put("MacAddress", a == null || a.macAddress() == null ? "" : a.macAddress());
        return n;
    }

    private static Map<String, Object> ports(Attachment a, Collection<String> exposed) {
        Map<String, Object> ports = new TreeMap<>();
        for (String port : exposed) {
            ports.put(port.contains("/") ? port : port + "/tcp", null);
        }
        for (PortMapping p : a == null ? List.<PortMapping>of() : a.ports()) {
            if (!(ports.get(p.key()) instanceof List)) {
                ports.put(p.key(), new ArrayList<>());
            }
            @SuppressWarnings("unchecked")
            List<Object> bindings = (List<Object>) ports.get(p.key());
            bindings.add(Map.of("HostIp", p.hostAddress(), "HostPort", Integer.toString(p.hostPort())));
        }
        return ports;
    }

    /**
     * The rows of a Docker list's {@code Ports}: {@code {IP, PrivatePort, PublicPort, Type}} for each published port,
     * {@code {PrivatePort, Type}} for an exposed one that is not.
     */
    public static List<Map<String, Object>> portRows(Optional<Attachment> network, Collection<String> exposed) {
        List<Map<String, Object>> rows = new ArrayList<>();
        List<PortMapping> published = network.map(Attachment::ports).orElse(List.of());
        for (PortMapping p : published) {
            rows.add(Map.of("IP", p.hostAddress(), "PrivatePort", p.containerPort(), "PublicPort", p.hostPort(),
                    "Type", p.protocol()));
        }
        for (String port : new TreeSet<>(exposed)) {
            String[] kp = (port.contains("/") ? port : port + "/tcp").split("/");
            if (published.stream().noneMatch(p -> p.key().equals(kp[0] + "/" + kp[1]))) {
                rows.add(Map.of("PrivatePort", Integer.parseInt(kp[0]), "Type", kp[1]));
            }
        }
        return rows;
    }

    /** The ports a sandbox's image EXPOSEs (none when the image is gone, e.g. after rmi -f). */
    public static Set<String> exposedPorts(Images images, Sandbox s) {
        try {
            var config = images.configOf(Digest.parse(s.imageId())).config();
            return config == null || config.exposedPorts() == null ? Set.of() : config.exposedPorts().keySet();
        } catch (KilnException e) {
            return Set.of();
        }
    }

    /** Docker's State object with State.Health when the sandbox has a health check. */
    public static Map<String, Object> state(Sandbox s, Optional<dev.kiln.engine.HealthChecks.Report> health) {
        Map<String, Object> state = state(s);
        health.ifPresent(h -> {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("Status", h.status());
            m.put("FailingStreak", h.failingStreak());
            m.put("Log", h.log().stream().map(r -> {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("Start", r.start().toString());
                e.put("End", r.end().toString());
                e.put("ExitCode", r.exitCode());
                e.put("Output", r.output());
                return e;
            }).toList());
            state.put("Health", m);
        });
        return state;
    }

    /** ps's Status with the health Docker adds to a running container's: (healthy), (health: starting). */
    public static String humanStatus(Sandbox s, Optional<dev.kiln.engine.HealthChecks.Report> health) {
        String status = humanStatus(s);
        if (!s.running() || health.isEmpty()) {
            return status;
        }
        String h = health.get().status();
        return status + (h.equals("starting") ? " (health: starting)" : " (" + h + ")");
    }

    /**
     * Docker's State while a restart policy's back-off runs ({@code Sandboxes.restarting}): Status
     * {@code restarting}, Running and Restarting true, no pid (Docker's {@code SetRestarting}).
     */
    public static Map<String, Object> restarting(Map<String, Object> state) {
        state.put("Status", "restarting");
        state.put("Running", true);
        state.put("Restarting", true);
        state.put("Pid", 0);
        return state;
    }

    /** ps's State and Status of a sandbox whose restart is pending: {@code Restarting (CODE) N seconds ago}. */
    public static String restartingStatus(Sandbox s) {
        return "Restarting (" + (s.exitCode() == null ? 0 : s.exitCode()) + ") "
                + ago(System.currentTimeMillis() - s.finished()) + " ago";
    }

    /** Docker's State object, shared by both API faces. */
    public static Map<String, Object> state(Sandbox s) {
        Map<String, Object> state = new LinkedHashMap<>();
        state.put("Status", status(s));
        state.put("Running", s.running());
        state.put("Paused", s.paused());
        state.put("Restarting", false);
        state.put("OOMKilled", s.oomKilled());
        state.put("Dead", false);
        state.put("Pid", s.running() ? s.shimPid() : 0);
        state.put("ExitCode", s.exitCode() == null ? 0 : s.exitCode());
        state.put("StartedAt", time(s.started()));
        state.put("FinishedAt", time(s.finished()));
        return state;
    }

    /** kiln's inspect document (exposed-only ports are the Docker face's; kiln lists what is published). */
    static Map<String, Object> inspect(Engine engine, Sandbox s) {
        SandboxConfig r = s.config();
        Sandboxes sandboxes = engine.sandboxes();
        Optional<Attachment> network = sandboxes.network(s);
        Map<String, Object> state = state(s, sandboxes.health(s));
        if (sandboxes.restarting(s)) {
            restarting(state);
        }

        Map<String, Object> config = new LinkedHashMap<>();
        config.put("Hostname", r.hostname() != null ? r.hostname() : s.shortId());
        config.put("User", r.user() == null ? "" : r.user());
        config.put("Tty", r.tty());
        config.put("OpenStdin", r.openStdin());
        config.put("Env", s.process().env());
        config.put("Cmd", r.cmd());
        config.put("Entrypoint", r.entrypoint());
        config.put("WorkingDir", s.process().cwd());
        config.put("Image", s.image());
        config.put("Labels", r.labels() == null ? Map.of() : r.labels());

        Map<String, Object> host = new LinkedHashMap<>();
        host.put("Isolation", s.isolation());
        host.put("Runtime", sandboxes.runtimeOf(s));
        // how this host runs the isolation's guest kernels: kvm, or tcg (emulated)
        engine.isolators().named(s.isolation()).guestKernels().ifPresent(k -> host.put("Accelerator", k.accelerator()));
        host.putAll(sandboxes.isolationDetails(s)); // a vm's VmmJail: uid, seccomp, root; or that it has none
        host.put("NanoCpus", r.nanoCpus());
        host.put("Memory", r.memory());
        host.put("PidsLimit", r.pidsLimit());
        host.put("ReadonlyRootfs", r.readOnly());
        host.put("AutoRemove", r.autoRemove());
        dev.kiln.engine.RestartPolicy restart = dev.kiln.engine.Supervision.of(r).restart();
        host.put("RestartPolicy", Map.of("Name", restart.name(), "MaximumRetryCount", restart.maximumRetryCount()));
        host.put("NetworkMode", sandboxes.networkMode(s).display());
        host.put("PortBindings", r.publish() == null ? List.of() : r.publish());
        RunSettingsView.hostConfig(r, s.isolation(), host);
        host.put("Isolation", s.isolation()); // kiln's own view: the isolation it runs in, even when asked "default"

        Map<String, Object> m = new LinkedHashMap<>();
        m.put("Id", s.id());
        m.put("Created", time(s.created()));
        m.put("Path", s.process().args().getFirst());
        m.put("Args", s.process().args().subList(1, s.process().args().size()));
        m.put("State", state);
        m.put("Image", s.imageId());
        m.put("Name", "/" + s.name());
        m.put("RestartCount", s.restarts());
        m.put("Isolation", s.isolation());
        m.put("Config", config);
        m.put("HostConfig", host);
        m.put("Mounts", VolumeView.mounts(engine, s));
        Map<String, Object> networkSettings = networkSettings(network, Set.of(), null, null);
        networkSettings.put("Networks", networks(engine, s, networkSettings.get("Networks"), KilnNetwork.NAME, false));
        m.put("NetworkSettings", networkSettings);
        return m;
    }

    /** A row of {@code GET /v1/sandboxes}: Docker's list fields, with the published ports of a running sandbox. */
    static Map<String, Object> row(Sandboxes sandboxes, Sandbox s) {
        Map<String, Object> m = row(s, sandboxes.network(s));
        m.put("Status", humanStatus(s, sandboxes.health(s)));
        if (sandboxes.restarting(s)) {
            m.put("State", "restarting");
            m.put("Status", restartingStatus(s));
        }
        return m;
    }

    static Map<String, Object> row(Sandbox s, Optional<Attachment> network) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ID", s.id());
        m.put("Names", List.of(s.name()));
        m.put("Image", s.image());
        m.put("ImageID", s.imageId());
        m.put("Command", String.join(" ", s.process().args()));
        m.put("Created", s.created() / 1000);
        m.put("State", status(s));
        m.put("Status", humanStatus(s));
        m.put("Isolation", s.isolation());
        m.put("Ports", portRows(network, Set.of()));
        m.put("Labels", s.config().labels() == null ? Map.of() : s.config().labels());
        return m;
    }

    /** Docker's State.Status words. */
    public static String status(Sandbox s) {
        return switch (s.state()) {
            case CREATED -> "created";
            case RUNNING -> "running";
            case PAUSED -> "paused";
            case EXITED -> "exited";
            case REMOVING -> "removing";
        };
    }

    public static String humanStatus(Sandbox s) {
        long now = System.currentTimeMillis();
        if (s.running()) {
            return "Up " + ago(now - s.started()) + (s.paused() ? " (Paused)" : "");
        }
        if (s.state() == SandboxState.EXITED) {
            return "Exited (" + (s.exitCode() == null ? 0 : s.exitCode()) + ") " + ago(now - s.finished()) + " ago";
        }
        return s.state() == SandboxState.CREATED ? "Created" : "Removal In Progress";
    }

    private static String ago(long ms) {
        long sec = ms / 1000;
        if (sec < 1) {
            return "Less than a second";
        }
        if (sec < 60) {
            return sec + " second" + (sec == 1 ? "" : "s");
        }
        if (sec < 3600) {
            return sec / 60 + " minute" + (sec / 60 == 1 ? "" : "s");
        }
        if (sec < 172800) {
            return sec / 3600 + " hour" + (sec / 3600 == 1 ? "" : "s");
        }
        return sec / 86400 + " days";
    }

    public static String time(long epochMs) {
        return epochMs == 0 ? ZERO_TIME : Instant.ofEpochMilli(epochMs).toString();
    }
}
