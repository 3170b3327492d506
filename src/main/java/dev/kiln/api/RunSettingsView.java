package dev.kiln.api;

import dev.kiln.engine.SandboxConfig;
import dev.kiln.isolation.RunSettings;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@link RunSettings} of a sandbox in Docker's inspect document, with the names, types and defaults Docker
 * shows (a flag not given shows as Docker shows it unset: null lists, empty modes, 64 MiB of /dev/shm).
 */
public final class RunSettingsView {
    private RunSettingsView() {
    }

    /** Docker's /dev/shm when --shm-size is not given. */
    public static final long DEFAULT_SHM = 64L << 20;

    public static void hostConfig(SandboxConfig r, String isolation, Map<String, Object> host) {
        RunSettings s = r.settings();
        host.put("Isolation", "default".equals(r.isolation()) ? "default" : isolation);
        host.put("Init", s.init() ? Boolean.TRUE : null);
        host.put("CapAdd", s.capAdd().isEmpty() ? null : s.capAdd());
        host.put("CapDrop", s.capDrop().isEmpty() ? null : s.capDrop());
        List<String> securityOpt = new ArrayList<>();
        if (s.noNewPrivileges()) {
            securityOpt.add("no-new-privileges");
        }
        if (s.seccomp() != null) {
            securityOpt.add("seccomp=" + s.seccomp());
        }
        host.put("SecurityOpt", securityOpt.isEmpty() ? null : securityOpt);
        host.put("Ulimits", s.ulimits().stream().map(u -> Map.of("Name", u.name(), "Soft", u.soft(), "Hard",
                u.hard())).toList());
        host.put("Devices", s.devices().stream().map(d -> Map.of("PathOnHost", d.pathOnHost(), "PathInContainer",
                d.pathInContainer(), "CgroupPermissions", d.permissions())).toList());
        host.put("DeviceCgroupRules", s.deviceCgroupRules().isEmpty() ? null : s.deviceCgroupRules());
        host.put("ShmSize", s.shmSize() == 0 ? DEFAULT_SHM : s.shmSize());
        host.put("Sysctls", s.sysctls().isEmpty() ? null : new java.util.TreeMap<>(s.sysctls()));
        host.put("GroupAdd", s.groupAdd().isEmpty() ? null : s.groupAdd());
        host.put("PidMode", s.pidMode() == null ? "" : s.pidMode());
        host.put("UTSMode", s.utsMode() == null ? "" : s.utsMode());
        // Docker's default: private on cgroup v2, host on v1 (and hybrid) hosts
        host.put("CgroupnsMode", s.cgroupnsMode() != null ? s.cgroupnsMode()
                : Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers")) ? "private" : "host");
        host.put("CpuShares", s.cpuShares());
        host.put("CpusetCpus", s.cpusetCpus() == null ? "" : s.cpusetCpus());
        host.put("MemorySwap", s.memorySwap());
        host.put("MemorySwappiness", s.memorySwappiness());
        host.put("LogConfig", Map.of("Type", s.logDriver() == null ? "json-file" : s.logDriver(), "Config",
                Map.of()));
    }

    public static void config(SandboxConfig r, Map<String, Object> config) {
        if (r.settings().stopTimeout() != null) {
            config.put("StopTimeout", r.settings().stopTimeout());
        }
    }

    /** The endpoint's Aliases and IPAMConfig on the network the sandbox was created on. */
    public static void endpoint(SandboxConfig r, Map<String, Object> endpoint) {
        RunSettings s = r.settings();
        endpoint.put("Aliases", s.aliases().isEmpty() ? null : s.aliases());
        Map<String, Object> ipam = new LinkedHashMap<>();
        if (s.ipAddress() != null) {
            ipam.put("IPv4Address", s.ipAddress());
        }
        endpoint.put("IPAMConfig", ipam.isEmpty() ? null : ipam);
    }

    /** The seconds a stop waits before SIGKILL when the request gives none: --stop-timeout, else Docker's 10. */
    public static int stopSeconds(dev.kiln.engine.Sandbox s) {
        Integer t = s.config().settings().stopTimeout();
        return t == null ? 10 : t;
    }

    /** Docker's {@code t}: seconds, -1 (or below) for no limit. */
    public static java.time.Duration stopTimeout(int seconds) {
        return seconds < 0 ? java.time.Duration.ofDays(3650) : java.time.Duration.ofSeconds(seconds);
    }
}
