package dev.kiln.containerd;

import static org.assertj.core.api.Assertions.assertThat;

import dev.kiln.containerd.cri.*;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A pod through containerd's CRI plugin with the {@code kiln-gvisor} handler, as the kubelet drives it: its
 * containers run in one gVisor sandbox (runsc's multi-container sandbox, the pod sandbox's Sentry), served by one
 * shim for the pod; two containers from two images reach each other over localhost, ExecSync, ContainerStatus with
 * the exit code of a container that ends, logs at log_path, stop and removal with nothing left.
 */
@Timeout(600)
class CriGvisorTest {

    private static final Duration T = Duration.ofSeconds(60);
    private static TestContainerd containerd;
    private static CriClient cri;

    @BeforeAll
    static void start() throws Exception {
        containerd = CriSetup.start(Files.createTempDirectory("kg"));
        cri = new CriClient(containerd.socket);
    }

    @AfterAll
    static void stop() throws Exception {
        if (cri != null) cri.close();
        if (containerd != null) {
            containerd.close();
            assertThat(containerd.shims()).as("shims left running").isEmpty();
        }
        CriSetup.removeBridge();
    }

    @Test
    void kilnGvisorHandlerRunsAPodOfContainersInOneSandbox() throws Exception {
        PodSandboxConfig sandbox = PodSandboxConfig.newBuilder()
                .setMetadata(PodSandboxMetadata.newBuilder().setName("gpod").setUid("gpod-uid").setNamespace("default"))
                .setHostname("gpod").setLogDirectory(containerd.dir.resolve("logs/gpod").toString())
                // the pod's size, as the kubelet sends it (the sum of its containers' resources): CRI passes it to
                // the runtime as io.kubernetes.cri.sandbox-* annotations, which size the pod's one sandbox
                .setLinux(LinuxPodSandboxConfig.newBuilder().setResources(LinuxContainerResources.newBuilder()
                        .setCpuPeriod(100_000).setCpuQuota(150_000).setCpuShares(1536)
                        .setMemoryLimitInBytes(512L << 20)))
                .build();
        String pod = cri.call("RunPodSandbox", RunPodSandboxRequest.newBuilder().setConfig(sandbox)
                .setRuntimeHandler("kiln-gvisor").build(), RunPodSandboxResponse.getDefaultInstance()).getPodSandboxId();
        String server = container(pod, sandbox, "server", TestContainerd.IMAGE,
                "echo server up; exec httpd -f -p 127.0.0.1:8080 -h /etc");
        String client = container(pod, sandbox, "client", TestContainerd.IMAGE2, "echo client up; exec sleep 600");
        String ender = container(pod, sandbox, "ender", TestContainerd.IMAGE, "echo bye >&2; exit 3");

        ExecSyncResponse fetched = null;
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < deadline) {
            // nc, not wget: this runsc's hostinet (20221219) answers a blocking read(2) on a TCP socket that has no
            // data yet with EAGAIN, which busybox wget reports as an error; nc polls first (docs/kubernetes.md)
            fetched = exec(client, "sh", "-c", "printf 'GET /passwd HTTP/1.0\\r\\n\\r\\n' | busybox nc 127.0.0.1 8080");
            // an empty answer with exit 0 was seen once under CI load (the connection closed before httpd's child
            // answered): retry until the file comes, the assertion below still fails if it never does
            if (fetched.getExitCode() == 0 && !fetched.getStdout().isEmpty()) break;
            Thread.sleep(300);
        }
        assertThat(fetched.getStdout().toStringUtf8()).as(fetched.getStderr().toStringUtf8()).contains("root:x:0:0");
        // the kernel the containers see is gVisor's
        assertThat(exec(server, "dmesg").getStdout().toStringUtf8()).contains("Starting gVisor");
        ExecSyncResponse failed = exec(server, "sh", "-c", "echo to-err >&2; exit 7");
        assertThat(failed.getExitCode()).isEqualTo(7);
        assertThat(failed.getStderr().toStringUtf8()).isEqualTo("to-err\n");

        // one gVisor sandbox (runsc boot) for the pod, its containers inside it; one shim for the pod
        assertThat(sandboxes(pod)).as("runsc sandboxes of the pod").isEqualTo(1);
        assertThat(sandboxes(server) + sandboxes(client)).as("runsc sandboxes of the containers").isZero();
        assertThat(containerd.shims()).as("shims serving the pod").hasSize(1);
        // the sandbox, which holds all the pod's containers, is sized to the pod
        long boot = sandboxPid(pod);
        assertThat(cgroupFile(boot, "memory", "memory.limit_in_bytes")).isEqualTo(Long.toString(512L << 20));
        assertThat(cgroupFile(boot, "cpu", "cpu.cfs_quota_us")).isEqualTo("150000");
        assertThat(cgroupFile(boot, "cpu", "cpu.shares")).isEqualTo("1536");

        ContainerStatus status = status(server);
        assertThat(status.getState()).isEqualTo(ContainerState.CONTAINER_RUNNING);
        Path log = Path.of(status.getLogPath());
        assertThat(log).isEqualTo(containerd.dir.resolve("logs/gpod/server.log"));
        // CRI's log format: TIMESTAMP STREAM TAG MESSAGE
        assertThat(Files.readString(log)).containsPattern("\\S+ stdout F server up");

        // a container that ends by itself: its exit code comes from inside the sandbox, the pod goes on
        ContainerStatus ended = status(ender);
        long until = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (ended.getState() != ContainerState.CONTAINER_EXITED && System.nanoTime() < until) {
            Thread.sleep(200);
            ended = status(ender);
        }
        assertThat(ended.getState()).isEqualTo(ContainerState.CONTAINER_EXITED);
        assertThat(ended.getExitCode()).isEqualTo(3);
        assertThat(Files.readString(Path.of(ended.getLogPath()))).containsPattern("\\S+ stderr F bye");
        assertThat(exec(client, "echo", "still").getStdout().toStringUtf8()).isEqualTo("still\n");

        cri.call("StopPodSandbox", StopPodSandboxRequest.newBuilder().setPodSandboxId(pod).build(),
                StopPodSandboxResponse.getDefaultInstance());
        cri.call("RemovePodSandbox", RemovePodSandboxRequest.newBuilder().setPodSandboxId(pod).build(),
                RemovePodSandboxResponse.getDefaultInstance());
        List<String> ids = List.of(pod, server, client, ender);
        assertThat(containerd.ctr(T, "-n", "k8s.io", "c", "ls", "-q").out()).doesNotContain(ids);
        assertThat(containerd.ctr(T, "-n", "k8s.io", "task", "ls", "-q").out()).doesNotContain(ids);
        long gone = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!containerd.shims().isEmpty() && System.nanoTime() < gone) Thread.sleep(100);
        assertThat(containerd.shims()).as("shims of the removed pod").isEmpty();
        assertThat(sandboxes(pod)).as("runsc sandboxes of the removed pod").isZero();
        assertThat(containerd.mounts()).noneMatch(m -> ids.stream().anyMatch(m::contains));
    }

    private static long sandboxPid(String id) {
        return ProcessHandle.allProcesses().filter(p -> p.info().arguments().map(a -> {
            List<String> args = List.of(a);
            return args.contains("boot") && args.getLast().equals(id);
        }).orElse(false)).findFirst().orElseThrow().pid();
    }

    /** A file of the v1 cgroup of {@code controller} that process {@code pid} is in. */
    private static String cgroupFile(long pid, String controller, String file) throws java.io.IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/cgroup"))) {
            String[] f = line.split(":", 3);
            if (List.of(f[1].split(",")).contains(controller)) {
                return Files.readString(Path.of("/sys/fs/cgroup", controller, f[2], file)).strip();
            }
        }
        throw new AssertionError("process " + pid + " has no " + controller + " cgroup");
    }

    /** runsc sandbox processes ({@code runsc … boot … ID}) of container {@code id}. */
    private static long sandboxes(String id) {
        return ProcessHandle.allProcesses().filter(p -> p.info().arguments().map(a -> {
            List<String> args = List.of(a);
            return args.contains("boot") && args.getLast().equals(id);
        }).orElse(false)).count();
    }

    private static ContainerStatus status(String id) {
        return cri.call("ContainerStatus", ContainerStatusRequest.newBuilder().setContainerId(id).build(),
                ContainerStatusResponse.getDefaultInstance()).getStatus();
    }

    private static String container(String pod, PodSandboxConfig sandbox, String name, String image, String script) {
        String id = cri.call("CreateContainer", CreateContainerRequest.newBuilder().setPodSandboxId(pod)
                .setSandboxConfig(sandbox).setConfig(ContainerConfig.newBuilder()
                        .setMetadata(ContainerMetadata.newBuilder().setName(name))
                        .setImage(ImageSpec.newBuilder().setImage(image))
                        .addCommand("sh").addArgs("-c").addArgs(script).setLogPath(name + ".log"))
                .build(), CreateContainerResponse.getDefaultInstance()).getContainerId();
        cri.call("StartContainer", StartContainerRequest.newBuilder().setContainerId(id).build(),
                StartContainerResponse.getDefaultInstance());
        return id;
    }

    private static ExecSyncResponse exec(String container, String... cmd) {
        return cri.call("ExecSync", ExecSyncRequest.newBuilder().setContainerId(container)
                .addAllCmd(List.of(cmd)).setTimeout(30).build(), ExecSyncResponse.getDefaultInstance());
    }
}
