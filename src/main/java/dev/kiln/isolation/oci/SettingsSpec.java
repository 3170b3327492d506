package dev.kiln.isolation.oci;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.isolation.Resources;
import dev.kiln.isolation.RunSettings;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * The {@link RunSettings} that land in the OCI spec's {@code linux} object: {@code --device} nodes and their cgroup
 * rules, {@code --device-cgroup-rule}, {@code --sysctl}, {@code --cpu-shares}, {@code --cpuset-cpus},
 * {@code --memory-swap} and {@code --memory-swappiness}, as moby's oci spec writes them.
 */
final class SettingsSpec {
    private SettingsSpec() {
    }

    private static final int S_IFMT = 0170000;
    private static final int S_IFCHR = 0020000;
    private static final int S_IFBLK = 0060000;

    static void apply(RunSettings settings, Resources limits, ObjectNode linux, ObjectNode resources) {
        if (!settings.devices().isEmpty()) {
            ArrayNode nodes = linux.putArray("devices");
            ArrayNode rules = (ArrayNode) resources.get("devices");
            for (RunSettings.Device d : settings.devices()) {
                Node n = node(d.pathOnHost());
                nodes.addObject().put("path", d.pathInContainer()).put("type", n.type()).put("major", n.major())
                        .put("minor", n.minor()).put("fileMode", n.mode() & 07777).put("uid", 0).put("gid", 0);
                rules.addObject().put("allow", true).put("type", n.type()).put("major", n.major())
                        .put("minor", n.minor()).put("access", d.permissions());
            }
        }
        for (String rule : settings.deviceCgroupRules()) {
            ArrayNode rules = (ArrayNode) resources.get("devices");
            String[] parts = rule.strip().split("\\s+");
            String[] numbers = parts[1].split(":");
            ObjectNode r = rules.addObject().put("allow", true).put("type", parts[0]);
            if (!numbers[0].equals("*")) {
                r.put("major", Long.parseLong(numbers[0]));
            }
            if (!numbers[1].equals("*")) {
                r.put("minor", Long.parseLong(numbers[1]));
            }
            r.put("access", parts[2]);
        }
        if (!settings.sysctls().isEmpty()) {
            ObjectNode sysctl = linux.putObject("sysctl");
            new java.util.TreeMap<>(settings.sysctls()).forEach(sysctl::put);
        }
        if (settings.cpuShares() > 0 || settings.cpusetCpus() != null) {
            ObjectNode cpu = resources.has("cpu") ? (ObjectNode) resources.get("cpu") : resources.putObject("cpu");
            if (settings.cpuShares() > 0) {
                cpu.put("shares", settings.cpuShares());
            }
            if (settings.cpusetCpus() != null) {
                cpu.put("cpus", settings.cpusetCpus());
            }
        }
        if (settings.memorySwap() != 0 || settings.memorySwappiness() != null) {
            ObjectNode memory = resources.has("memory") ? (ObjectNode) resources.get("memory")
                    : resources.putObject("memory");
            if (settings.memorySwap() != 0) {
                if (limits.memoryBytes() == 0 && settings.memorySwap() > 0) {
                    throw KilnException.invalid("--memory-swap needs --memory as well (Docker's rule)");
                }
                memory.put("swap", settings.memorySwap());
            }
            if (settings.memorySwappiness() != null) {
                memory.put("swappiness", settings.memorySwappiness());
            }
        }
    }

    private record Node(String type, long major, long minor, int mode) {
    }

    /** The device node at {@code path} on the host (not followed if a symlink: Docker resolves it first). */
    private static Node node(String path) {
        Path p = Path.of(path);
        try {
            Path real = p.toRealPath();
            int mode = (Integer) Files.getAttribute(real, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            long rdev = (Long) Files.getAttribute(real, "unix:rdev", LinkOption.NOFOLLOW_LINKS);
            String type = switch (mode & S_IFMT) {
                case S_IFCHR -> "c";
                case S_IFBLK -> "b";
                default -> throw KilnException.invalid("--device " + path + " is not a device node on kilnd's host");
            };
            // glibc's major()/minor() of a 64-bit dev_t
            long major = ((rdev >>> 8) & 0xfffL) | ((rdev >>> 32) & 0xfffff000L);
            long minor = (rdev & 0xffL) | ((rdev >>> 12) & 0xffffff00L);
            return new Node(type, major, minor, mode);
        } catch (IOException e) {
            throw KilnException.invalid("--device " + path + ": no such device on kilnd's host");
        }
    }
}
