package dev.kiln.cli;

import dev.kiln.KilnException;
import dev.kiln.api.v1.RunFlags;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code kiln create/run} flags past {@link CreateOptions}' first ones, spelled as Docker's, sent as
 * {@link RunFlags} and checked by kilnd; what only the client can do is done here: {@code --security-opt
 * seccomp=FILE} is read (the profile travels, as the docker CLI sends it), {@code --label-file} read,
 * {@code --cidfile} written.
 */
final class RunFlagOptions {

    @Option(names = "--init", description = "Run an init (tini) as PID 1 that reaps zombies and forwards signals")
    boolean init;

    @Option(names = "--cap-add", paramLabel = "CAP", description = "Add a Linux capability (or ALL)")
    List<String> capAdd = new ArrayList<>();

    @Option(names = "--cap-drop", paramLabel = "CAP", description = "Drop a Linux capability (or ALL)")
    List<String> capDrop = new ArrayList<>();

    @Option(names = "--security-opt", paramLabel = "OPT",
            description = "no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json (Docker's format)")
    List<String> securityOpt = new ArrayList<>();

    @Option(names = "--ulimit", paramLabel = "NAME=SOFT[:HARD]", description = "Set a ulimit, e.g. nofile=1024:2048")
    List<String> ulimits = new ArrayList<>();

    @Option(names = "--device", paramLabel = "HOST[:CTR[:PERMS]]", description = "container: add a host device")
    List<String> devices = new ArrayList<>();

    @Option(names = "--device-cgroup-rule", paramLabel = "RULE", description = "Allow devices, e.g. 'c 1:3 mr'")
    List<String> deviceCgroupRules = new ArrayList<>();

    @Option(names = "--shm-size", paramLabel = "SIZE", description = "Size of /dev/shm, e.g. 128m (default 64m)")
    String shmSize;

    @Option(names = "--sysctl", paramLabel = "K=V", description = "Set a namespaced sysctl (net.*, kernel.shm*, ...)")
    List<String> sysctls = new ArrayList<>();

    @Option(names = "--group-add", paramLabel = "GROUP", description = "Add a supplementary group (name or gid)")
    List<String> groupAdd = new ArrayList<>();

    @Option(names = "--pid", paramLabel = "host", description = "container: share the host's PID namespace")
    String pid;

    @Option(names = "--uts", paramLabel = "host", description = "container: share the host's UTS namespace")
    String uts;

    @Option(names = "--cgroupns", paramLabel = "MODE", description = "host or private cgroup namespace")
    String cgroupns;

    @Option(names = {"-c", "--cpu-shares"}, paramLabel = "N", description = "CPU shares (relative weight)")
    long cpuShares;

    @Option(names = "--cpuset-cpus", paramLabel = "LIST", description = "CPUs to run on, e.g. 0-1")
    String cpusetCpus;

    @Option(names = "--memory-swap", paramLabel = "SIZE", description = "Memory plus swap (-1: unlimited)")
    String memorySwap;

    @Option(names = "--memory-swappiness", paramLabel = "0-100")
    Long memorySwappiness;

    @Option(names = "--stop-timeout", paramLabel = "SECONDS", description = "Seconds a stop waits before SIGKILL")
    Integer stopTimeout;

    @Option(names = "--log-driver", paramLabel = "DRIVER", description = "json-file (default) or none")
    String logDriver;

    @Option(names = "--network-alias", paramLabel = "NAME", description = "Another name of the sandbox on its network")
    List<String> aliases = new ArrayList<>();

    @Option(names = "--ip", paramLabel = "ADDRESS", description = "The sandbox's IPv4 address on its network")
    String ip;

    @Option(names = "--label-file", paramLabel = "FILE", description = "Read labels from a file (K=V lines)")
    List<Path> labelFiles = new ArrayList<>();

    @Option(names = "--cidfile", paramLabel = "FILE", description = "Write the sandbox's ID to FILE")
    Path cidfile;

    RunFlags flags() {
        List<String> opts = new ArrayList<>();
        for (String o : securityOpt) {
            opts.add(seccompFile(o));
        }
        Map<String, String> sysctlMap = new LinkedHashMap<>();
        for (String s : sysctls) {
            int eq = s.indexOf('=');
            if (eq <= 0) {
                throw KilnException.invalid("invalid --sysctl \"" + s + "\" (KEY=VALUE)");
            }
            sysctlMap.put(s.substring(0, eq), s.substring(eq + 1));
        }
        long shm = shmSize == null ? 0 : size(shmSize, "--shm-size");
        long swap = memorySwap == null ? 0 : memorySwap.strip().equals("-1") ? -1 : size(memorySwap, "--memory-swap");
        RunFlags f = new RunFlags(init, orNull(capAdd), orNull(capDrop), orNull(opts), orNull(ulimits),
                orNull(devices), shm, sysctlMap.isEmpty() ? null : sysctlMap, orNull(groupAdd), pid, uts, cgroupns,
                cpuShares, cpusetCpus, swap, memorySwappiness, orNull(deviceCgroupRules), stopTimeout, logDriver,
                orNull(aliases), ip);
        return unset(f) ? null : f;
    }

    /**
     * Whether {@code f} holds nothing beyond {@link RunFlags#NONE}'s: compared component by component rather than
     * with the record's {@code equals}, whose first call bootstraps method handles that generate classes at run time
     * (~30 ms of every `kiln run` and `create`, issue 17). NONE's components are all null, false or zero.
     */
    private static boolean unset(RunFlags f) {
        for (java.lang.reflect.RecordComponent c : RunFlags.class.getRecordComponents()) {
            try {
                Object mine = c.getAccessor().invoke(f);
                Object none = c.getAccessor().invoke(RunFlags.NONE);
                if (mine == null || none == null ? mine != none : !mine.equals(none)) {
                    return false;
                }
            } catch (ReflectiveOperationException e) {
                return f.equals(RunFlags.NONE);
            }
        }
        return true;
    }

    /** {@code seccomp=FILE} becomes {@code seccomp=<the file's JSON>}, as the docker CLI sends it. */
    private static String seccompFile(String opt) {
        String o = opt.strip();
        String sep = o.startsWith("seccomp=") ? "seccomp=" : o.startsWith("seccomp:") ? "seccomp:" : null;
        if (sep == null || o.equals(sep + "unconfined")) {
            return o;
        }
        Path file = Path.of(o.substring(sep.length()));
        try {
            return "seccomp=" + Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw KilnException.invalid("cannot read --security-opt seccomp profile " + file + ": "
                    + e.getMessage());
        }
    }

    /** Labels of {@code --label-file}s ({@code K=V} lines, {@code #} comments), before the {@code -l} ones. */
    Map<String, String> fileLabels() {
        Map<String, String> out = new LinkedHashMap<>();
        for (Path f : labelFiles) {
            try {
                for (String line : Files.readAllLines(f)) {
                    String l = line.strip();
                    if (!l.isEmpty() && !l.startsWith("#")) {
                        int eq = l.indexOf('=');
                        out.put(eq < 0 ? l : l.substring(0, eq), eq < 0 ? "" : l.substring(eq + 1));
                    }
                }
            } catch (IOException e) {
                throw KilnException.invalid("cannot read --label-file " + f + ": " + e.getMessage());
            }
        }
        return out;
    }

    /** Docker's --cidfile: refused before anything is created if the file exists. */
    void checkCidfile() {
        if (cidfile != null && Files.exists(cidfile)) {
            throw KilnException.invalid("container ID file found, make sure the other container isn't running or "
                    + "delete " + cidfile);
        }
    }

    void writeCidfile(String id) {
        if (cidfile == null) {
            return;
        }
        try {
            Files.writeString(cidfile, id, java.nio.file.StandardOpenOption.CREATE_NEW,
                    java.nio.file.StandardOpenOption.WRITE);
        } catch (FileAlreadyExistsException e) {
            throw KilnException.invalid("container ID file found: " + cidfile);
        } catch (IOException e) {
            throw KilnException.invalid("cannot write --cidfile " + cidfile + ": " + e.getMessage());
        }
    }

    /** A size as Docker's: a number with an optional b/k/m/g suffix (binary units). */
    private static long size(String text, String flag) {
        var m = java.util.regex.Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*([bkmgt]?)b?")
                .matcher(text.strip().toLowerCase(java.util.Locale.ROOT));
        if (!m.matches()) {
            throw KilnException.invalid("invalid " + flag + " \"" + text + "\" (e.g. 128m or 1g)");
        }
        long unit = switch (m.group(2)) {
            case "k" -> 1L << 10;
            case "m" -> 1L << 20;
            case "g" -> 1L << 30;
            case "t" -> 1L << 40;
            default -> 1;
        };
        return (long) (Double.parseDouble(m.group(1)) * unit);
    }

    private static List<String> orNull(List<String> values) {
        return values.isEmpty() ? null : List.copyOf(values);
    }
}
