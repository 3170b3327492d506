package dev.kiln.isolation.oci;

import dev.kiln.KilnException;
import dev.kiln.isolation.RunSettings;
import dev.kiln.isolation.SandboxNetwork;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What of {@link RunSettings} a container (runc) or gVisor (runsc) sandbox can be given, checked before anything is
 * pulled or written: gVisor emulates devices and PID/UTS namespaces in its Sentry, so host devices and the host's
 * namespaces are refused there; a ulimit above kilnd's own hard limit is refused for both (kilnd runs without
 * CAP_SYS_RESOURCE here, so the runtime could not raise it); {@code --init} needs tini on the host.
 */
final class SettingsCheck {
    private SettingsCheck() {
    }

    static void check(RunSettings settings, OciRuntime runtime, SandboxNetwork.Mode network) {
        if (runtime == OciRuntime.RUNSC) {
            List<String> refused = new ArrayList<>();
            if (!settings.devices().isEmpty()) {
                refused.add("--device (gVisor emulates /dev in its Sentry and passes no host device through)");
            }
            if (!settings.deviceCgroupRules().isEmpty()) {
                refused.add("--device-cgroup-rule (gVisor has no host devices to allow)");
            }
            if (settings.pidMode() != null || settings.utsMode() != null) {
                refused.add("--pid host and --uts host (gVisor's Sentry keeps its own PID and UTS namespaces)");
            }
            if (!refused.isEmpty()) {
                throw KilnException.invalid("the gvisor isolation does not support " + String.join(", ", refused)
                        + ": use --isolation container");
            }
        }
        if (network == SandboxNetwork.Mode.HOST) {
            settings.sysctls().keySet().stream().filter(k -> k.startsWith("net.")).findFirst().ifPresent(k -> {
                throw KilnException.invalid("--sysctl " + k + " is not allowed with --network host (it would "
                        + "change the host's network settings)");
            });
        }
        for (RunSettings.Ulimit u : settings.ulimits()) {
            long limit = hardLimit(Path.of("/proc/self/limits"), u.name());
            if (u.hard() > limit || u.soft() > limit) {
                throw KilnException.invalid("--ulimit " + u.name() + "=" + u.soft() + ":" + u.hard() + " is above "
                        + "kilnd's own hard limit " + limit + " (kilnd has no CAP_SYS_RESOURCE to raise it)");
            }
        }
        if (settings.init()) {
            TinyInit.locate();
        }
        settings.devices().forEach(d -> {
            if (!Files.exists(Path.of(d.pathOnHost()))) {
                throw KilnException.invalid("--device " + d.pathOnHost() + ": no such device on kilnd's host");
            }
        });
    }

    /** Names of {@code /proc/self/limits} rows by Docker's ulimit name. */
    private static String row(String name) {
        return switch (name) {
            case "core" -> "Max core file size";
            case "cpu" -> "Max cpu time";
            case "data" -> "Max data size";
            case "fsize" -> "Max file size";
            case "locks" -> "Max file locks";
            case "memlock" -> "Max locked memory";
            case "msgqueue" -> "Max msgqueue size";
            case "nice" -> "Max nice priority";
            case "nofile" -> "Max open files";
            case "nproc" -> "Max processes";
            case "rss" -> "Max resident set";
            case "rtprio" -> "Max realtime priority";
            case "rttime" -> "Max realtime timeout";
            case "sigpending" -> "Max pending signals";
            case "stack" -> "Max stack size";
            case "as" -> "Max address space";
            default -> throw KilnException.invalid("invalid --ulimit name \"" + name + "\"");
        };
    }

    static long hardLimit(Path limitsFile, String name) {
        String row = row(name.toLowerCase(Locale.ROOT));
        try {
            for (String line : Files.readAllLines(limitsFile)) {
                if (line.startsWith(row)) {
                    String[] fields = line.substring(row.length()).trim().split("\\s+");
                    return fields[1].equals("unlimited") ? Long.MAX_VALUE : Long.parseLong(fields[1]);
                }
            }
            return Long.MAX_VALUE;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + limitsFile, e);
        }
    }
}
