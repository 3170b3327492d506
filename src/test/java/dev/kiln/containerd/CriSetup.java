package dev.kiln.containerd;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A containerd with its CRI plugin for CriTest and bench/pod-start: CNI (bridge + host-local + loopback from
 * /usr/lib/cni) on a bridge of its own, the pause image from {@link TestContainerd#PAUSE}, pods' netns under its
 * state, and the runtime handlers {@code runc} (containerd's own shim), {@code kiln}, {@code kiln-gvisor} and
 * {@code kiln-vm}, each kiln handler naming its isolation in a runtime config file (ConfigPath).
 */
final class CriSetup {
    private CriSetup() {
    }

    private static String bridge;

    static TestContainerd start(Path dir) throws IOException {
        return start(dir, "");
    }

    /** The same, with {@code extraConfig} added to containerd's config (e.g. a {@code [debug]} table). */
    static TestContainerd start(Path dir, String extraConfig) throws IOException {
        bridge = "kcri" + HexFormat.of().toHexDigits((short) ThreadLocalRandom.current().nextInt());
        int subnet = 100 + ThreadLocalRandom.current().nextInt(100);
        Files.createDirectories(dir.resolve("cni"));
        Files.writeString(dir.resolve("cni/10-kiln-test.conflist"), """
                {"cniVersion": "0.4.0", "name": "kiln-cri-test", "plugins": [
                  {"type": "bridge", "bridge": "%s", "isGateway": true, "ipMasq": false,
                   "ipam": {"type": "host-local", "dataDir": "%s/cni-ipam",
                            "ranges": [[{"subnet": "10.213.%d.0/24"}]]}},
                  {"type": "loopback"}]}
                """.formatted(bridge, dir, subnet));
        StringBuilder runtimes = new StringBuilder();
        for (String isolation : new String[] {"container", "gvisor", "vm"}) {
            String handler = isolation.equals("container") ? "kiln" : "kiln-" + isolation;
            Path config = dir.resolve(handler + ".toml");
            Files.writeString(config, "isolation = \"" + isolation + "\"\n");
            runtimes.append("""
                    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%s]
                      runtime_type = "io.containerd.kiln.v2"
                    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%s.options]
                      ConfigPath = "%s"
                    """.formatted(handler, handler, config));
        }
        return TestContainerd.start(dir, true, """
                [plugins."io.containerd.grpc.v1.cri"]
                  sandbox_image = "%s"
                  netns_mounts_under_state_dir = true
                  # these machines lack CAP_SYS_RESOURCE (DESIGN §4): CRI's oom_score_adj of -998 for the pause
                  # container cannot be written, by runc or runsc alike; this caps it at containerd's own
                  restrict_oom_score_adj = true
                [plugins."io.containerd.grpc.v1.cri".cni]
                  bin_dir = "/usr/lib/cni"
                  conf_dir = "%s/cni"
                [plugins."io.containerd.grpc.v1.cri".containerd]
                  default_runtime_name = "runc"
                [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
                  runtime_type = "io.containerd.runc.v2"
                %s
                %s
                """.formatted(TestContainerd.PAUSE, dir, runtimes, extraConfig));
    }

    /** Deletes the CNI bridge this set-up named (the bridge plugin makes it and never removes it). */
    static void removeBridge() throws IOException, InterruptedException {
        if (bridge != null) new ProcessBuilder("ip", "link", "del", bridge).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor();
    }
}
