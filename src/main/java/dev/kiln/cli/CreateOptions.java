package dev.kiln.cli;

import dev.kiln.KilnException;
import dev.kiln.api.v1.CreateRequest;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The flags {@code kiln create} and {@code kiln run} share, spelled as Docker's. */
final class CreateOptions {

    @Option(names = "--name", paramLabel = "NAME", description = "Name the sandbox")
    String name;

    @Option(names = "--isolation", paramLabel = "KIND", description = "container, gvisor or vm (default: kilnd's)")
    String isolation;

    @Option(names = "--runtime", paramLabel = "NAME", description = "runc, crun, runsc, qemu, firecracker")
    String runtime;

    @Option(names = {"-e", "--env"}, paramLabel = "K=V", description = "Set an environment variable (-e K takes the caller's)")
    List<String> env = new ArrayList<>();

    @Option(names = "--env-file", paramLabel = "FILE", description = "Read environment variables from a file")
    List<Path> envFiles = new ArrayList<>();

    @Option(names = {"-w", "--workdir"}, paramLabel = "DIR")
    String workdir;

    @Option(names = {"-u", "--user"}, paramLabel = "USER[:GROUP]")
    String user;

    @Option(names = "--entrypoint", paramLabel = "CMD", description = "Override the image's entrypoint")
    String entrypoint;

    @Option(names = {"-h", "--hostname"}, paramLabel = "NAME")
    String hostname;

    @Option(names = "--cpus", paramLabel = "N", description = "CPUs, e.g. 1.5")
    String cpus;

    @Option(names = {"-m", "--memory"}, paramLabel = "SIZE", description = "Memory limit, e.g. 512m")
    String memory;

    @Option(names = "--pids-limit", paramLabel = "N")
    long pidsLimit;

    @Option(names = "--read-only", description = "Mount the root filesystem read-only")
    boolean readOnly;

    @Option(names = {"-l", "--label"}, paramLabel = "K=V")
    List<String> labels = new ArrayList<>();

    @Option(names = {"-i", "--interactive"}, description = "Keep stdin open")
    boolean interactive;

    @Option(names = {"-t", "--tty"}, description = "Allocate a pseudo-terminal")
    boolean tty;

    @Option(names = "--rm", description = "Remove the sandbox when it exits")
    boolean rm;

    @Option(names = "--platform", paramLabel = "OS/ARCH", description = "Platform to pull if the image is missing")
    String platform;

    @Option(names = {"-p", "--publish"}, paramLabel = "[IP:][HOSTPORT:]PORT[/PROTO]",
            description = "Publish a sandbox port on the host (implies --network kiln)")
    List<String> publish = new ArrayList<>();

    @Option(names = "--network", paramLabel = "NETWORK", description = "kiln (the default bridge), a network made "
            + "with 'kiln network create', none (loopback only), host (container only) or user (vm only)")
    String network;

    @Option(names = {"-P", "--publish-all"}, description = "Publish every port the image EXPOSEs on a random host port")
    boolean publishAll;

    @Option(names = "--dns", paramLabel = "ADDRESS", description = "Set a nameserver in the sandbox's resolv.conf")
    List<String> dns = new ArrayList<>();

    @Option(names = "--dns-search", paramLabel = "DOMAIN", description = "Set a DNS search domain")
    List<String> dnsSearch = new ArrayList<>();

    @Option(names = "--dns-option", paramLabel = "OPTION", description = "Set a resolv.conf option")
    List<String> dnsOptions = new ArrayList<>();

    @Option(names = "--add-host", paramLabel = "NAME:ADDRESS", description = "Add a line to the sandbox's /etc/hosts")
    List<String> extraHosts = new ArrayList<>();

    @Option(names = "--kernel", paramLabel = "PATH", description = "vm: boot this kernel (bzImage or vmlinux)")
    String kernel;

    @Option(names = "--disk-size", paramLabel = "SIZE", description = "vm: size of the writable disk, e.g. 4g")
    String diskSize;

    @Option(names = {"-v", "--volume"}, paramLabel = "[SRC:]DST[:OPTS]",
            description = "Bind-mount a host path (absolute SRC) or a named volume; DST alone: an anonymous volume")
    List<String> volumes = new ArrayList<>();

    @Option(names = "--mount", paramLabel = "type=bind|volume|tmpfs,src=,dst=,...", description = "Attach a mount")
    List<String> mounts = new ArrayList<>();

    @Option(names = "--tmpfs", paramLabel = "DST[:OPTS]", description = "Mount a tmpfs, e.g. /run:size=64m,mode=1777")
    List<String> tmpfs = new ArrayList<>();

    @picocli.CommandLine.Mixin
    RunFlagOptions more;

    @picocli.CommandLine.Mixin
    SupervisionOptions supervision = new SupervisionOptions();

    @Parameters(index = "0", paramLabel = "IMAGE")
    String image;

    @Parameters(index = "1..*", paramLabel = "CMD", description = "Command and arguments")
    List<String> command = new ArrayList<>();

    CreateRequest request() {
        List<String> envs = new ArrayList<>();
        for (Path f : envFiles) {
            try {
                for (String line : Files.readAllLines(f)) {
                    String l = line.strip();
                    if (!l.isEmpty() && !l.startsWith("#")) {
                        envs.add(resolveEnv(l));
                    }
                }
            } catch (IOException e) {
                throw KilnException.invalid("cannot read --env-file " + f + ": " + e.getMessage());
            }
        }
        env.forEach(e -> envs.add(resolveEnv(e)));
        Map<String, String> labelMap = new LinkedHashMap<>(more.fileLabels());
        for (String l : labels) {
            int eq = l.indexOf('=');
            labelMap.put(eq < 0 ? l : l.substring(0, eq), eq < 0 ? "" : l.substring(eq + 1));
        }
        List<String> ep = entrypoint == null ? null : entrypoint.isEmpty() ? List.of() : List.of(entrypoint);
        return new CreateRequest(image, name, command.isEmpty() ? null : List.copyOf(command), ep, envs, workdir, user,
                hostname, isolation, runtime, nanoCpus(cpus), bytes(memory), pidsLimit, readOnly, labelMap, tty,
                interactive, rm, platform, publish.isEmpty() ? null : List.copyOf(publish), network, publishAll,
                orNull(dns), orNull(dnsSearch), orNull(dnsOptions), orNull(extraHosts), kernel,
                diskSize == null ? 0 : bytes(diskSize), volumes.isEmpty() && mounts.isEmpty() && tmpfs.isEmpty() ? null
                : new CreateRequest.MountFlags(orNull(volumes), orNull(mounts), orNull(tmpfs)), more.flags(),
                supervision.request());
    }

    private static List<String> orNull(List<String> values) {
        return values.isEmpty() ? null : List.copyOf(values);
    }

    /** Docker's -e K: the caller's value if set; else K goes as is, and kilnd drops K (also the image's). */
    private static String resolveEnv(String e) {
        if (e.contains("=")) {
            if (e.startsWith("=")) {
                throw KilnException.invalid("invalid environment variable \"" + e + "\"");
            }
            return e;
        }
        String v = System.getenv(e);
        return v == null ? e : e + "=" + v;
    }

    static long nanoCpus(String cpus) {
        if (cpus == null) {
            return 0;
        }
        try {
            double c = Double.parseDouble(cpus);
            if (c <= 0 || c > 1024) {
                throw new NumberFormatException();
            }
            return Math.round(c * 1e9);
        } catch (NumberFormatException e) {
            throw KilnException.invalid("invalid --cpus \"" + cpus + "\" (a positive number, e.g. 0.5 or 2)");
        }
    }

    /** Docker's sizes: a number with an optional b/k/m/g suffix (binary units). */
    static long bytes(String size) {
        if (size == null) {
            return 0;
        }
        var m = java.util.regex.Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*([bkmgt]?)b?").matcher(size.strip().toLowerCase(Locale.ROOT));
        if (!m.matches()) {
            throw KilnException.invalid("invalid size \"" + size + "\" (e.g. 512m or 2g)");
        }
        double n = Double.parseDouble(m.group(1));
        long unit = switch (m.group(2)) {
            case "k" -> 1L << 10;
            case "m" -> 1L << 20;
            case "g" -> 1L << 30;
            case "t" -> 1L << 40;
            default -> 1;
        };
        long bytes = (long) (n * unit);
        if (bytes < 6L << 20) {
            throw KilnException.invalid("minimum memory limit allowed is 6MB (got " + size + ")");
        }
        return bytes;
    }
}
