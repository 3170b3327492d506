package dev.kiln.api;

import dev.kiln.KilnException;
import dev.kiln.api.v1.RunFlags;
import dev.kiln.isolation.Capabilities;
import dev.kiln.isolation.RunSettings;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * {@link RunFlags} (kiln's CLI sends them as typed; Docker's face builds them from HostConfig) → the engine's
 * {@link RunSettings}, with Docker's checks: what is malformed or what kiln cannot honour is a 400 naming the flag.
 */
public final class RunFlagsTranslator {
    private RunFlagsTranslator() {
    }

    /** moby's opts.ValidateSysctl: the sysctls that belong to a namespace the sandbox has of its own. */
    private static final List<String> IPC_SYSCTLS = List.of("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
            "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced");
    private static final Pattern CGROUP_RULE = Pattern.compile("([acb]) ([0-9]+|\\*):([0-9]+|\\*) ([rwm]{1,3})");
    private static final Pattern CPUSET = Pattern.compile("\\d+(-\\d+)?(,\\d+(-\\d+)?)*");

    public static RunSettings settings(RunFlags f) {
        if (f == null || f.equals(RunFlags.NONE)) {
            return RunSettings.NONE;
        }
        boolean noNewPrivileges = false;
        String seccomp = null;
        for (String opt : orEmpty(f.securityOpt())) {
            String o = opt.strip();
            if (o.equals("no-new-privileges") || o.equals("no-new-privileges=true") || o.equals("no-new-privileges:true")) {
                noNewPrivileges = true;
            } else if (o.equals("no-new-privileges=false") || o.equals("no-new-privileges:false")) {
                noNewPrivileges = false;
            } else if (o.startsWith("seccomp=") || o.startsWith("seccomp:")) {
                seccomp = o.substring("seccomp=".length());
                if (seccomp.isEmpty()) {
                    throw KilnException.invalid("invalid --security-opt \"seccomp=\": give unconfined or a profile");
                }
            } else {
                String name = o.length() > 40 ? o.substring(0, 40) + "…" : o;
                throw KilnException.invalid("kiln does not support --security-opt \"" + name + "\" (it takes "
                        + "no-new-privileges and seccomp=unconfined|PROFILE.json)");
            }
        }
        List<RunSettings.Ulimit> ulimits = new ArrayList<>();
        for (String u : orEmpty(f.ulimits())) {
            ulimits.add(ulimit(u));
        }
        List<RunSettings.Device> devices = new ArrayList<>();
        for (String d : orEmpty(f.devices())) {
            devices.add(device(d));
        }
        Map<String, String> sysctls = new LinkedHashMap<>();
        (f.sysctls() == null ? Map.<String, String>of() : f.sysctls()).forEach((k, v) -> {
            if (!(IPC_SYSCTLS.contains(k) || k.startsWith("fs.mqueue.") || k.startsWith("net."))) {
                throw KilnException.invalid("--sysctl " + k + " is not allowed: it is not namespaced (kiln takes "
                        + "net.*, fs.mqueue.* and the IPC kernel.msg*/sem/shm* ones, as Docker)");
            }
            if (v == null) {
                throw KilnException.invalid("--sysctl " + k + " needs a value (KEY=VALUE)");
            }
            sysctls.put(k, v);
        });
        for (String rule : orEmpty(f.deviceCgroupRules())) {
            if (!CGROUP_RULE.matcher(rule.strip()).matches()) {
                throw KilnException.invalid("invalid --device-cgroup-rule \"" + rule + "\" (e.g. 'c 1:3 mr')");
            }
        }
        if (f.shmSize() < 0) {
            throw KilnException.invalid("--shm-size must not be negative");
        }
        if (f.cpuShares() < 0) {
            throw KilnException.invalid("--cpu-shares must not be negative");
        }
        if (f.cpusetCpus() != null && !f.cpusetCpus().isEmpty() && !CPUSET.matcher(f.cpusetCpus()).matches()) {
            throw KilnException.invalid("invalid --cpuset-cpus \"" + f.cpusetCpus() + "\" (e.g. 0-1 or 0,2)");
        }
        if (f.memorySwap() < -1) {
            throw KilnException.invalid("invalid --memory-swap " + f.memorySwap() + " (bytes, or -1 for unlimited)");
        }
        if (f.memorySwappiness() != null && (f.memorySwappiness() < 0 || f.memorySwappiness() > 100)) {
            throw KilnException.invalid("invalid --memory-swappiness " + f.memorySwappiness() + " (0 to 100)");
        }
        if (f.stopTimeout() != null && f.stopTimeout() < -1) {
            throw KilnException.invalid("invalid --stop-timeout " + f.stopTimeout());
        }
        String log = text(f.logDriver());
        if (log != null && !log.equals("json-file") && !log.equals("none")) {
            throw KilnException.invalid("kiln does not support log driver \"" + log + "\" (json-file or none)");
        }
        String ip = text(f.ip());
        if (ip != null && !ip.matches("\\d{1,3}(\\.\\d{1,3}){3}")) {
            throw KilnException.invalid("invalid --ip \"" + ip + "\" (an IPv4 address of the network's subnet)");
        }
        return new RunSettings(f.init(), caps(f.capAdd(), "--cap-add"), caps(f.capDrop(), "--cap-drop"),
                noNewPrivileges, seccomp, ulimits, devices, f.shmSize(), sysctls, orEmpty(f.groupAdd()),
                hostOnly(f.pid(), "--pid"), hostOnly(f.uts(), "--uts"), cgroupns(f.cgroupns()), f.cpuShares(),
                text(f.cpusetCpus()), f.memorySwap(), f.memorySwappiness(), orEmpty(f.deviceCgroupRules()).stream()
                .map(String::strip).toList(), f.stopTimeout(), log, orEmpty(f.aliases()), ip);
    }

    private static List<String> caps(List<String> names, String flag) {
        return orEmpty(names).stream().map(n -> Capabilities.normalize(n, flag)).distinct().toList();
    }

    /** {@code nofile=1024:2048} or {@code nofile=1024} (soft = hard), as Docker's --ulimit. */
    static RunSettings.Ulimit ulimit(String spec) {
        int eq = spec.indexOf('=');
        String name = eq < 0 ? "" : spec.substring(0, eq).strip().toLowerCase(Locale.ROOT);
        if (!RunSettings.Ulimit.NAMES.contains(name)) {
            throw KilnException.invalid("invalid --ulimit \"" + spec + "\" (NAME=SOFT[:HARD], NAME one of "
                    + String.join(", ", RunSettings.Ulimit.NAMES) + ")");
        }
        String[] values = spec.substring(eq + 1).split(":", -1);
        try {
            long soft = Long.parseLong(values[0].strip());
            long hard = values.length > 1 ? Long.parseLong(values[1].strip()) : soft;
            if (values.length > 2 || soft < -1 || hard < -1) {
                throw new NumberFormatException();
            }
            if (soft > hard && hard != -1) {
                throw KilnException.invalid("invalid --ulimit \"" + spec + "\": soft limit " + soft
                        + " is above hard limit " + hard);
            }
            return new RunSettings.Ulimit(name, soft, hard);
        } catch (NumberFormatException e) {
            throw KilnException.invalid("invalid --ulimit \"" + spec + "\" (NAME=SOFT[:HARD] with numbers)");
        }
    }

    /** {@code HOST[:CONTAINER][:PERMISSIONS]}, as Docker's --device; permissions default to {@code rwm}. */
    static RunSettings.Device device(String spec) {
        String[] parts = spec.split(":", -1);
        String host = parts[0];
        String container = host;
        String perms = "rwm";
        if (parts.length == 2) {
            if (parts[1].matches("[rwm]{1,3}")) {
                perms = parts[1];
            } else {
                container = parts[1];
            }
        } else if (parts.length == 3) {
            container = parts[1];
            perms = parts[2];
        } else if (parts.length > 3) {
            throw KilnException.invalid("invalid --device \"" + spec + "\" (HOST[:CONTAINER][:PERMISSIONS])");
        }
        if (!host.startsWith("/") || !container.startsWith("/") || container.contains("..")) {
            throw KilnException.invalid("invalid --device \"" + spec + "\": paths must be absolute");
        }
        if (!perms.matches("[rwm]{1,3}")) {
            throw KilnException.invalid("invalid --device \"" + spec + "\": permissions are of rwm");
        }
        return new RunSettings.Device(host, container, perms);
    }

    private static String hostOnly(String mode, String flag) {
        String m = text(mode);
        if (m == null || m.equals("private")) {
            return null;
        }
        if (!m.equals("host")) {
            throw KilnException.invalid("kiln does not support " + flag + " " + m + " (host, or none for the "
                    + "sandbox's own namespace)");
        }
        return m;
    }

    private static String cgroupns(String mode) {
        String m = text(mode);
        if (m != null && !m.equals("host") && !m.equals("private")) {
            throw KilnException.invalid("invalid --cgroupns \"" + m + "\" (host or private)");
        }
        return m;
    }

    private static String text(String s) {
        return s == null || s.isEmpty() ? null : s;
    }

    private static <T> List<T> orEmpty(List<T> values) {
        return values == null ? List.of() : values;
    }
}
