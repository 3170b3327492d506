package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.isolation.EtcFiles;
import dev.kiln.isolation.EtcValues;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.SandboxNetwork;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.network.SlirpNetwork;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.stream.Collectors;

/**
 * The payload of START and EXEC frames (docs/guest-protocol.md): NUL-terminated {@code key=value} records.
 * A process: {@code arg} (repeated, in order), {@code env} (repeated), {@code cwd}, {@code uid}, {@code gid},
 * {@code groups} (comma-separated), {@code tty}, {@code stdin}; START adds {@code hostname}, {@code hosts},
 * {@code resolv}, {@code readonly}, {@code volatile} ({@code --rm}) and, with a network card, {@code mac}, {@code net},
 * {@code gateway}, {@code mtu}.
 */
final class GuestSpec {
    static final int MAX_PAYLOAD = 65536;
    /** What the relay appends to START at every start ({@code seed=}, {@code time=}: docs/guest-protocol.md). */
    static final int RELAY_RECORDS = 256;

    private GuestSpec() {
    }

    /**
     * START for {@code sandbox}; {@code nic} null: loopback only. With the sizes of the image and writable disks
     * ({@code image-bytes}, {@code rw-bytes}; negative: not said): a VM restored from a QEMU template keeps the disks
     * the template bound where their sizes match (docs/vm.md, "Snapshot start"), and has the others probed.
     */
    static byte[] start(SandboxSpec sandbox, GuestNic nic, long imageBytes, long rwBytes) {
        ByteArrayOutputStream out = process(sandbox.process());
        if (imageBytes >= 0) record(out, "image-bytes", Long.toString(imageBytes));
        if (rwBytes >= 0) record(out, "rw-bytes", Long.toString(rwBytes));
        record(out, "hostname", EtcValues.hostname(sandbox.hostname())); // kiln-init writes it as it is
        record(out, "hosts", EtcFiles.hosts(sandbox));
        record(out, "resolv", EtcFiles.resolvConf(resolverNetwork(sandbox.network()), EtcFiles.hostResolvConf()));
        record(out, "readonly", sandbox.readOnly() ? "1" : "0");
        // --rm: its disk goes with it, no sync at the power-off; not with virtio-fs shares (volumes, binds), whose
        // writes must reach the host whatever the sandbox's end
        if (sandbox.disposable() && VirtioFs.of(sandbox).isEmpty()) record(out, "volatile", "1");
        mounts(out, sandbox);
        if (nic != null) {
            record(out, "mac", nic.mac());
            record(out, "net", nic.address() + "/" + nic.prefixLength());
            record(out, "gateway", nic.gateway());
            record(out, "mtu", Integer.toString(nic.mtu()));
        }
        return checked(out, MAX_PAYLOAD - RELAY_RECORDS);
    }

    /**
     * {@code mount} records, in order (parents before children): {@code TYPE<TAB>SOURCE<TAB>TARGET<TAB>FLAGS<TAB>DATA}
     * with FLAGS among {@code ro,nosuid,nodev,noexec}: a bind becomes the virtio-fs share of its index
     * ({@link VirtioFs}), a tmpfs stays one.
     */
    private static void mounts(ByteArrayOutputStream out, SandboxSpec sandbox) {
        mounts(out, sandbox.extraMounts(), 0);
    }

    /**
     * START for a VM whose root is the virtio-fs share {@code rootTag} (containerd's bundle: {@link DirectoryVm}): the
     * process, its names and files ({@code hosts}, {@code resolv}: null leaves the root's own), and {@code mounts},
     * whose binds are the shares after the root's.
     */
    static byte[] directory(ProcessSpec process, String hostname, String hosts, String resolv, boolean readOnly,
                            String rootTag, java.util.List<dev.kiln.isolation.Mount> mounts, GuestNic nic) {
        ByteArrayOutputStream out = process(process);
        record(out, "root", rootTag);
        if (hostname != null && !hostname.isEmpty()) record(out, "hostname", hostname);
        if (hosts != null) record(out, "hosts", hosts);
        if (resolv != null) record(out, "resolv", resolv);
        record(out, "readonly", readOnly ? "1" : "0");
        mounts(out, mounts, 1);
        if (nic != null) {
            record(out, "mac", nic.mac());
            record(out, "net", nic.address() + "/" + nic.prefixLength());
            if (!nic.gateway().isEmpty()) record(out, "gateway", nic.gateway()); // none: the pod's subnet only
            record(out, "mtu", Integer.toString(nic.mtu()));
        }
        return checked(out, MAX_PAYLOAD - RELAY_RECORDS);
    }

    /** {@code firstShare}: the index of the first bind's virtio-fs share (1 when share 0 is the root). */
    private static void mounts(ByteArrayOutputStream out, java.util.List<dev.kiln.isolation.Mount> all,
                               int firstShare) {
        java.util.List<dev.kiln.isolation.Mount> binds = all.stream().filter(m -> m.type().equals("bind")).toList();
        java.util.List<dev.kiln.isolation.Mount> sorted = new java.util.ArrayList<>(all);
        sorted.sort(java.util.Comparator.comparingInt(m -> java.nio.file.Path.of(m.target()).getNameCount()));
        for (dev.kiln.isolation.Mount m : sorted) {
            java.util.List<String> flags = new java.util.ArrayList<>();
            java.util.List<String> data = new java.util.ArrayList<>();
            for (String o : m.options()) {
                if (java.util.Set.of("ro", "nosuid", "nodev", "noexec").contains(o)) flags.add(o);
                else if (m.type().equals("tmpfs") && o.contains("=")) data.add(o);
            }
            String source = m.type().equals("bind") ? VirtioFs.tag(firstShare + binds.indexOf(m)) : "tmpfs";
            String type = m.type().equals("bind") ? "virtiofs" : "tmpfs";
            if (m.target().contains("\t")) throw KilnException.invalid("a mount target holds a tab: " + m.target());
            record(out, "mount", type + "\t" + source + "\t" + m.target() + "\t" + String.join(",", flags) + "\t"
                    + String.join(",", data));
        }
    }

    /** On the user network the resolver is slirp's (it forwards to the host's), unless --dns says otherwise. */
    private static SandboxNetwork resolverNetwork(SandboxNetwork n) {
        if (n.mode() != SandboxNetwork.Mode.USER || !n.dns().isEmpty()) {
            return n;
        }
        return new SandboxNetwork(n.mode(), n.netns(), n.address(), n.prefixLength(), n.gateway(), n.mac(), n.mtu(),
                java.util.List.of(SlirpNetwork.DNS), n.dnsSearch(), n.dnsOptions(), n.extraHosts(), n.ports());
    }

    static byte[] exec(ProcessSpec process) {
        return checked(process(process), MAX_PAYLOAD);
    }

    /** EXEC of a pod's container: the process in its own root {@code chroot} (a guest path), null for the VM's. */
    static byte[] exec(ProcessSpec process, String chroot) {
        return exec(process, chroot, null);
    }

    /**
     * The same, with the pod's files (CRI's per-pod {@code hosts}, {@code resolv} and {@code hostname}; null: the
     * root's own), which kiln-init binds over the container root's /etc/hosts, /etc/resolv.conf and /etc/hostname in
     * the process's mount namespace (an EXEC's {@code hostname} names that file's line; the VM's own name is the
     * pod's, set at START).
     */
    static byte[] exec(ProcessSpec process, String chroot, DirectoryVm.PodFiles etc) {
        ByteArrayOutputStream out = process(process);
        if (chroot != null) record(out, "chroot", chroot);
        if (chroot != null && etc != null && etc.hosts() != null) record(out, "hosts", etc.hosts());
        if (chroot != null && etc != null && etc.resolv() != null) record(out, "resolv", etc.resolv());
        if (chroot != null && etc != null && etc.hostname() != null) record(out, "hostname", etc.hostname());
        return checked(out, MAX_PAYLOAD);
    }

    private static ByteArrayOutputStream process(ProcessSpec p) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (String arg : p.args()) record(out, "arg", arg);
        for (String env : p.env()) record(out, "env", env);
        record(out, "cwd", p.cwd() == null || p.cwd().isEmpty() ? "/" : p.cwd());
        record(out, "uid", Integer.toString(p.uid()));
        record(out, "gid", Integer.toString(p.gid()));
        record(out, "groups", p.additionalGids().stream().map(String::valueOf).collect(Collectors.joining(",")));
        record(out, "tty", p.tty() ? "1" : "0");
        record(out, "stdin", p.stdin() ? "1" : "0");
        return out;
    }

    private static void record(ByteArrayOutputStream out, String key, String value) {
        if (value.indexOf('\0') >= 0) throw KilnException.invalid(key + " must not contain a NUL byte");
        out.writeBytes((key + "=" + value).getBytes(StandardCharsets.UTF_8));
        out.write(0);
    }

    private static byte[] checked(ByteArrayOutputStream out, int max) {
        if (out.size() > max) {
            throw KilnException.invalid("the process's arguments and environment take " + out.size()
                    + " bytes; a VM accepts at most " + max);
        }
        return out.toByteArray();
    }
}
