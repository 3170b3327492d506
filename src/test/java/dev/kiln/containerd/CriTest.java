package dev.kiln.containerd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.kiln.containerd.cri.*;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Pods through containerd's CRI plugin as the kubelet drives them for a RuntimeClass: the kiln handler runs a pod
 * of two containers from two images that reach each other over localhost, ExecSync, ContainerStatus, logs at
 * log_path, stop and removal with nothing left (kiln-gvisor pods: CriGvisorTest); kiln-vm runs the same pod in one
 * microVM.
 */
@Timeout(600)
class CriTest {

    private static final Duration T = Duration.ofSeconds(60);
    private static TestContainerd containerd;
    private static CriClient cri;

    @BeforeAll
    static void start() throws Exception {
        containerd = CriSetup.start(Files.createTempDirectory("kr"));
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
    void kilnHandlerRunsAPodOfTwoContainers() throws Exception {
        pod("kiln");
    }

    /** One microVM for the pod: both containers run in it, each in its own root; nothing of it is left after. */
    @Test
    @org.junit.jupiter.api.Tag("slow")
    void kilnVmHandlerRunsAPodOfTwoContainersInOneVm() throws Exception {
        pod("kiln-vm");
        assertThat(ProcessHandle.allProcesses().map(p -> p.info().commandLine().orElse(""))
                .filter(c -> c.contains(containerd.dir.toString()) && (c.contains("qemu") || c.contains("virtiofsd")
                        || c.contains("--relay-"))).toList()).as("qemu, virtiofsd or relays left").isEmpty();
    }

    private static PodSandboxConfig sandboxConfig(String name) {
        return PodSandboxConfig.newBuilder()
                .setMetadata(PodSandboxMetadata.newBuilder().setName(name).setUid(name + "-uid")
                        .setNamespace("default"))
                .setHostname(name).setLogDirectory(containerd.dir.resolve("logs").resolve(name).toString()).build();
    }

    private void pod(String handler) throws Exception {
        PodSandboxConfig sandbox = sandboxConfig("pod-" + handler);
        String pod = cri.call("RunPodSandbox", RunPodSandboxRequest.newBuilder().setConfig(sandbox)
                .setRuntimeHandler(handler).build(), RunPodSandboxResponse.getDefaultInstance()).getPodSandboxId();
        String server = container(pod, sandbox, "server", TestContainerd.IMAGE,
                "echo server up; exec httpd -f -p 127.0.0.1:8080 -h /etc");
        String client = container(pod, sandbox, "client", TestContainerd.IMAGE2, "echo client up; exec sleep 600");

        ExecSyncResponse fetched = null;
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < deadline) {
            fetched = exec(client, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/passwd");
            if (fetched.getExitCode() == 0) break;
            Thread.sleep(300);
        }
        assertThat(fetched.getStdout().toStringUtf8()).as(fetched.getStderr().toStringUtf8())
                .contains("root:x:0:0");
        assertThat(exec(server, "sh", "-c", "echo to-err >&2; exit 7").getExitCode()).isEqualTo(7);
        if (handler.equals("kiln-vm")) {
            // one guest kernel for the pod: both containers see the same boot id, and it is not the host's
            String host = Files.readString(Path.of("/proc/sys/kernel/random/boot_id")).strip();
            String a = exec(server, "cat", "/proc/sys/kernel/random/boot_id").getStdout().toStringUtf8().strip();
            String b = exec(client, "cat", "/proc/sys/kernel/random/boot_id").getStdout().toStringUtf8().strip();
            assertThat(a).isEqualTo(b).isNotEqualTo(host).isNotEmpty();
            // each container in its own root: a file one writes is not in the other's
            assertThat(exec(client, "sh", "-c", "echo mine > /only-client; cat /only-client").getStdout()
                    .toStringUtf8()).isEqualTo("mine\n");
            assertThat(exec(server, "sh", "-c", "[ -e /only-client ]").getExitCode()).isEqualTo(1);
            // CRI's per-pod files (its copies of the node's /etc/hosts and /etc/resolv.conf, bound into each
            // container's spec), in each container's root though the image has neither
            assertThat(exec(client, "cat", "/etc/hosts").getStdout().toStringUtf8())
                    .isEqualTo(Files.readString(Path.of("/etc/hosts")));
            assertThat(exec(server, "cat", "/etc/resolv.conf").getStdout().toStringUtf8())
                    .isEqualTo(Files.readString(Path.of("/etc/resolv.conf")));
            // and the pod's /etc/hostname (CRI's file of the pod's hostname), which the image lacks too
            assertThat(exec(client, "cat", "/etc/hostname").getStdout().toStringUtf8()).isEqualTo("pod-kiln-vm\n");
            // an image whose /etc is a symlink (here an absolute one, made in the client's root) gets the pod's
            // files where the link leads inside its own root, not at that path in the VM's root
            // (this exec's own binds of the pod's files out of the way first: an overlay root's /etc cannot be renamed)
            ExecSyncResponse made = exec(client, "sh", "-c", "umount /etc/hosts /etc/resolv.conf /etc/hostname"
                    + " && rm -r /etc && mkdir /pod-etc && ln -s /pod-etc /etc");
            assertThat(made.getExitCode()).as(made.getStderr().toStringUtf8()).isZero();
            ExecSyncResponse linked = exec(client, "cat", "/pod-etc/hosts", "/etc/hostname");
            assertThat(linked.getStdout().toStringUtf8()).as(linked.getStderr().toStringUtf8())
                    .isEqualTo(Files.readString(Path.of("/etc/hosts")) + "pod-kiln-vm\n");
            // a fifo where a pod file goes holds no exec: kiln-init binds only over a regular file
            ExecSyncResponse fifo = exec(client, "sh", "-c", "umount /etc/hostname && rm /pod-etc/hostname"
                    + " && mkfifo /pod-etc/hostname");
            assertThat(fifo.getExitCode()).as(fifo.getStderr().toStringUtf8()).isZero();
            ExecSyncResponse past = exec(client, "sh", "-c", "cat /pod-etc/hosts; test -p /etc/hostname && echo fifo");
            assertThat(past.getStdout().toStringUtf8()).as(past.getStderr().toStringUtf8())
                    .isEqualTo(Files.readString(Path.of("/etc/hosts")) + "fifo\n");
            // an /etc that leads out of the container's own file system, here to the VM's /dev that every container
            // of the pod shares, gets no pod file made there: kiln-init's lookup crosses no mount
            ExecSyncResponse toDev = exec(client, "sh", "-c", "rm /etc && ln -s /dev /etc");
            assertThat(toDev.getExitCode()).as(toDev.getStderr().toStringUtf8()).isZero();
            assertThat(exec(client, "true").getExitCode()).isZero();
            assertThat(exec(server, "sh", "-c", "ls /dev/hosts /dev/resolv.conf /dev/hostname 2>/dev/null; true")
                    .getStdout().toStringUtf8()).isEmpty();
        }

        assertThat(containerd.shims()).as("one shim serves the pod's tasks").hasSize(1);
        ContainerStatus status = cri.call("ContainerStatus", ContainerStatusRequest.newBuilder()
                .setContainerId(server).build(), ContainerStatusResponse.getDefaultInstance()).getStatus();
        assertThat(status.getState()).isEqualTo(ContainerState.CONTAINER_RUNNING);
        Path log = Path.of(status.getLogPath());
        assertThat(log).isEqualTo(containerd.dir.resolve("logs").resolve(sandbox.getMetadata().getName())
                .resolve("server.log"));
        // CRI's log format: TIMESTAMP STREAM TAG MESSAGE
        assertThat(Files.readString(log)).containsPattern("\\S+ stdout F server up");

        cri.call("StopPodSandbox", StopPodSandboxRequest.newBuilder().setPodSandboxId(pod).build(),
                StopPodSandboxResponse.getDefaultInstance());
        cri.call("RemovePodSandbox", RemovePodSandboxRequest.newBuilder().setPodSandboxId(pod).build(),
                RemovePodSandboxResponse.getDefaultInstance());
        assertThat(containerd.ctr(T, "-n", "k8s.io", "c", "ls", "-q").out()).doesNotContain(pod, server, client);
        assertThat(containerd.ctr(T, "-n", "k8s.io", "task", "ls", "-q").out()).doesNotContain(pod, server, client);
        long gone = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!containerd.shims().isEmpty() && System.nanoTime() < gone) Thread.sleep(100);
        assertThat(containerd.shims()).as("shims of the removed pod").isEmpty();
        assertThat(containerd.mounts()).noneMatch(m -> m.contains(pod) || m.contains(server) || m.contains(client));
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
                .addAllCmd(java.util.List.of(cmd)).setTimeout(30).build(), ExecSyncResponse.getDefaultInstance());
    }
}
