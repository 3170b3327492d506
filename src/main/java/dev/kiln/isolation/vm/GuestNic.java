package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.isolation.SandboxNetwork;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.network.PortMapping;
import dev.kiln.network.SlirpNetwork;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The VM's network card (docs/networking.md, "VMs"): a virtio-net device with the sandbox's MAC, and what is behind it.
 *
 * <ul>
 * <li><b>bridge</b>: the engine made the namespace {@code netns} with the CNI veth {@code eth0} in it. A TAP
 * {@code tap0} is created next to it and the two are tied together with tc {@code mirred} redirects in both directions
 * (every frame arriving on one leaves on the other; Kata Containers' "tcfilter" model): no bridge, no extra MAC or
 * address, and the guest owns the veth's address and MAC, so CNI's IPAM, portmap DNAT and masquerade work unchanged.
 * QEMU opens the TAP by name, so it must run in that namespace: the relay {@code setns}es QEMU into it before exec
 * ({@code --netns}). That is simpler than passing a TAP descriptor (the JVM cannot hand an fd to a child process) and
 * robust: the TAP, the veth and the tc filters live only in the namespace and die with it when the engine deletes it.
 * <li><b>user</b>: QEMU's slirp; each published port is a {@code hostfwd}.
 * </ul>
 *
 * @param netns     the namespace QEMU joins (bridge), null for user
 * @param forwarded the published ports QEMU forwards (user only)
 */
record GuestNic(String mac, String address, int prefixLength, String gateway, int mtu, Path netns,
                List<PortMapping> forwarded) {

    static final String TAP = "tap0";
    private static final String NETDEV = "net0";
    private static final Duration SETUP_TIMEOUT = Duration.ofSeconds(10);

    /** The sandbox's NIC, or empty for {@code --network none} (loopback only: no device at all). */
    static Optional<GuestNic> of(SandboxSpec spec) {
        SandboxNetwork n = spec.network();
        return switch (n.mode()) {
            case NONE -> Optional.empty();
            case HOST -> throw KilnException.invalid("--network host is not possible for a VM");
            case BRIDGE -> {
                if (n.netns() == null || n.address() == null || n.mac() == null) {
                    throw new KilnException(KilnException.Kind.INTERNAL, "sandbox " + spec.name()
                            + " is not attached to its network (no address or MAC for the VM)");
                }
                yield Optional.of(new GuestNic(n.mac(), n.address(), n.prefixLength(), n.gateway(), n.mtu(),
                        n.netns(), List.of()));
            }
            case USER -> {
                if (n.address() == null || n.mac() == null) {
                    throw new KilnException(KilnException.Kind.INTERNAL, "sandbox " + spec.name()
                            + " has no user-network address (not attached)");
                }
                yield Optional.of(new GuestNic(n.mac(), n.address(), n.prefixLength(), n.gateway(), n.mtu(), null,
                        n.ports()));
            }
        };
    }

    /**
     * For a bridge: {@code tap0} (MTU as the veth's, up) and the two mirred redirects, in the namespace ({@code ip -n}
     * and {@code tc -n} enter it for their own process only; batch files keep it to two processes and stay in
     * {@code vmDir} as a record of what was done). A failure leaves only the namespace's contents, which the engine's
     * detach deletes with it.
     *
     * @param owner the uid (and gid) that may attach to the TAP without CAP_NET_ADMIN (a jailed Firecracker, which
     *              opens it by name); null: root only (QEMU, handed the relay's descriptor)
     */
    void prepare(Path vmDir, Integer owner) {
        if (netns == null) {
            return;
        }
        String ns = netns.getFileName().toString();
        Path ipBatch = vmDir.resolve("nic.ip");
        Path tcBatch = vmDir.resolve("nic.tc");
        String redirect = " parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev ";
        try {
            Files.writeString(ipBatch, "tuntap add dev " + TAP + " mode tap"
                    + (owner == null ? "" : " user " + owner + " group " + owner) + "\n"
                    + "link set dev " + TAP + " mtu " + mtu + " up\n");
            Files.writeString(tcBatch, "qdisc add dev eth0 ingress\n"
                    + "filter add dev eth0" + redirect + TAP + "\n"
                    + "qdisc add dev " + TAP + " ingress\n"
                    + "filter add dev " + TAP + redirect + "eth0\n");
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot write " + ipBatch + ": " + e.getMessage(), e);
        }
        try {
            // a namespace elsewhere than ip's own directory (a CRI pod's under containerd's state) is entered by path
            boolean named = List.of(Path.of("/var/run/netns"), Path.of("/run/netns")).contains(netns.getParent());
            List<String> in = named ? List.of() : List.of("nsenter", "--net=" + netns);
            List<String> ip = new ArrayList<>(in), tc = new ArrayList<>(in);
            ip.addAll(named ? List.of("ip", "-n", ns) : List.of("ip"));
            tc.addAll(named ? List.of("tc", "-n", ns) : List.of("tc"));
            ip.addAll(List.of("-batch", ipBatch.toString()));
            tc.addAll(List.of("-batch", tcBatch.toString()));
            Tool.run(ip, SETUP_TIMEOUT, "iproute2");
            Tool.run(tc, SETUP_TIMEOUT, "iproute2");
        } catch (KilnException e) {
            throw new KilnException(e.kind(), "cannot connect the VM to its network (tap " + TAP + " in " + ns
                    + "): " + e.getMessage(), e);
        }
    }

    /** The relay's option for QEMU's card: the TAP it opens in the namespace ({@code --tap}); none for slirp. */
    List<String> relayOptions() {
        return netns != null ? List.of("--tap", QemuCommand.TAP_FD + ":" + TAP) : List.of();
    }

    /** QEMU's {@code -netdev} and {@code -device} for this NIC (microvm: virtio-net on virtio-mmio). */
    List<String> qemuArgs() {
        List<String> a = new ArrayList<>();
        if (netns != null) {
            // the relay opens the TAP in the namespace and gives QEMU the descriptor (relayOptions): QEMU needs no
            // /dev/net/tun, and no capability to open a TAP
            a.addAll(List.of("-netdev", "tap,id=" + NETDEV + ",fd=" + QemuCommand.TAP_FD));
        } else {
            StringBuilder user = new StringBuilder("user,id=" + NETDEV + ",net=" + SlirpNetwork.SUBNET + ",host="
                    + SlirpNetwork.GATEWAY + ",dns=" + SlirpNetwork.DNS);
            for (PortMapping p : forwarded) {
                // hostfwd=PROTO:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT; an empty host address is every address
                user.append(",hostfwd=").append(p.protocol()).append(':').append(p.hostIp()).append(':')
                        .append(p.hostPort()).append('-').append(address).append(':').append(p.containerPort());
            }
            a.addAll(List.of("-netdev", user.toString()));
        }
        a.addAll(List.of("-device", "virtio-net-device,netdev=" + NETDEV + ",mac=" + mac));
        return a;
    }
}
