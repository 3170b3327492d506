package dev.kiln.containerd;

import static org.assertj.core.api.Assertions.assertThat;

import dev.kiln.containerd.cri.*;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The spare shim (docs/containerd.md, "The spare shim"): a pod's shim is a JVM started before the pod asked for
 * it, each pod still has a shim process of its own (two pods started at once too), a spare leaves when its
 * containerd stops, and a claimed shim killed leaves its pod's tasks exited and nothing behind.
 */
@Timeout(600)
class SpareShimTest {

    private static final Duration T = Duration.ofSeconds(60);
    private static TestContainerd containerd;
    private static CriClient cri;

    @BeforeAll
    static void start() throws Exception {
        containerd = CriSetup.start(Files.createTempDirectory("ks"));
        cri = new CriClient(containerd.socket);
    }

    @AfterAll
    static void stop() throws Exception {
        if (cri != null) cri.close();
        if (containerd != null) {
            containerd.close();
            assertThat(containerd.shims()).as("shims left running").isEmpty();
            assertThat(containerd.spares()).as("spares left running").isEmpty();
        }
        CriSetup.removeBridge();
    }

    @Test
    void aSecondPodsShimIsTheSpareStartedBeforeIt() throws Exception {
        Pod first = Pod.run("spare-a");
        // the pool fills up to its two spares (KILN_SHIM_SPARES), one after the other
        List<ProcessHandle> idle = idleSpares(containerd, 2);
        List<Long> before = pids(containerd.shims());

        Instant asked = Instant.now();
        Pod second = Pod.run("spare-b");
        List<Long> after = pids(containerd.shims());
        after.removeAll(before);
        assertThat(after).as("the second pod's shim").hasSize(1).isSubsetOf(pids(idle));
        ProcessHandle spare = ProcessHandle.of(after.getFirst()).orElseThrow();
        assertThat(spare.info().startInstant().orElseThrow()).as("the spare started before the pod was asked for")
                .isBefore(asked);
        // and the claim has the pool filled up again
        assertThat(idleSpares(containerd, 2)).as("idle spares after a claim").doesNotContain(spare);
        assertThat(containerd.log()).contains("a spare shim claimed");
        assertThat(second.exec("echo", "in-b").getStdout().toStringUtf8()).isEqualTo("in-b\n");
        assertThat(first.exec("echo", "in-a").getStdout().toStringUtf8()).isEqualTo("in-a\n");

        second.remove();
        first.remove();
        waitNoShims();
    }

    @Test
    void theNextSpareStartsOnceThePodsFirstContainerStarted() throws Exception {
        // with another spare idle in the pool, the claimed one starts the next spare only after its pod's start:
        // that JVM start then does not run beside the pod's sandbox and container starting
        Pod first = Pod.run("next-first");   // the pool is made by a node's first pod (whichever test runs first)
        List<Long> idle = pids(idleSpares(containerd, 2));
        Pod pod = Pod.sandbox("next-a");
        List<Long> atSandboxUp = pids(containerd.spares());
        List<Long> started = new ArrayList<>(atSandboxUp);
        started.removeAll(idle);
        assertThat(started).as("spares started while the pod's sandbox started").isEmpty();
        pod = pod.start();
        // (not by its start time: the JDK derives it from the boot time, which /proc gives in whole seconds)
        ProcessHandle next = idleSpares(containerd, 2).stream().filter(p -> !idle.contains(p.pid())).findFirst()
                .orElseThrow();
        assertThat(atSandboxUp).as("the next spare started after the pod's sandbox").doesNotContain(next.pid());
        assertThat(pod.exec("echo", "in-next").getStdout().toStringUtf8()).isEqualTo("in-next\n");
        pod.remove();
        first.remove();
        waitNoShims();
    }

    @Test
    void twoPodsStartedAtOnceHaveAShimEach() throws Exception {
        idleSpares(containerd, 2);
        CompletableFuture<Pod> a = CompletableFuture.supplyAsync(() -> Pod.run("twin-a"));
        CompletableFuture<Pod> b = CompletableFuture.supplyAsync(() -> Pod.run("twin-b"));
        Pod podA = a.join();
        Pod podB = b.join();
        List<ProcessHandle> shims = containerd.shims();
        assertThat(shims).as("one shim per pod").hasSize(2);
        // each shim runs in its own pod sandbox's bundle (a claimed spare moves there too)
        List<String> dirs = new ArrayList<>();
        for (ProcessHandle shim : shims) {
            dirs.add(Files.readSymbolicLink(Path.of("/proc/" + shim.pid() + "/cwd")).getFileName().toString());
        }
        assertThat(dirs).containsExactlyInAnyOrder(podA.id, podB.id);
        assertThat(podA.exec("hostname").getStdout().toStringUtf8()).isEqualTo("twin-a\n");
        assertThat(podB.exec("hostname").getStdout().toStringUtf8()).isEqualTo("twin-b\n");
        podA.remove();
        podB.remove();
        waitNoShims();
    }

    /** A claimed shim killed: containerd reports the pod's tasks exited, and removal leaves no process or mount. */
    @Test
    void aKilledClaimedShimLeavesNothing() throws Exception {
        idleSpares(containerd, 2);
        List<Long> before = pids(containerd.shims());
        Pod pod = Pod.run("crash");
        List<Long> after = pids(containerd.shims());
        after.removeAll(before);
        assertThat(after).hasSize(1);
        ProcessHandle shim = ProcessHandle.of(after.getFirst()).orElseThrow();
        assertThat(shim.info().arguments().map(List::of).orElse(List.of())).as("a claimed spare").contains("spare");
        List<Long> taskPids = new ArrayList<>();
        for (String line : containerd.ctr(T, "-n", "k8s.io", "task", "ls").out().lines().skip(1).toList()) {
            String[] f = line.trim().split("\\s+");
            if (f[0].equals(pod.id) || f[0].equals(pod.container)) taskPids.add(Long.parseLong(f[1]));
        }
        assertThat(taskPids).hasSize(2);

        shim.destroyForcibly();
        shim.onExit().get();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        ContainerState state = ContainerState.CONTAINER_RUNNING;
        while (System.nanoTime() < deadline) {
            state = cri.call("ContainerStatus", ContainerStatusRequest.newBuilder().setContainerId(pod.container)
                    .build(), ContainerStatusResponse.getDefaultInstance()).getStatus().getState();
            if (state == ContainerState.CONTAINER_EXITED) break;
            Thread.sleep(200);
        }
        assertThat(state).as("the container after its shim was killed").isEqualTo(ContainerState.CONTAINER_EXITED);
        for (long pid : taskPids) {
            long gone = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false) && System.nanoTime() < gone) {
                Thread.sleep(100);
            }
            assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)).as("task process " + pid)
                    .isFalse();
        }
        pod.remove();
        assertThat(containerd.mounts()).noneMatch(m -> m.contains(pod.id) || m.contains(pod.container));
        waitNoShims();
        // the killed shim could not remove its socket; containerd's delete of its tasks does
        assertThat(ShimMain.socketPath(java.util.Map.of("address", containerd.socket.toString(), "namespace",
                "k8s.io", "id", pod.id))).doesNotExist();
    }

    /**
     * An idle spare leaves by itself when its containerd stops (its socket disappears), without the fixture, and
     * removes that containerd's pool.
     */
    @Test
    void aSpareLeavesWhenItsContainerdStops() throws Exception {
        try (TestContainerd own = TestContainerd.start(Files.createTempDirectory("ksc"), false, "")) {
            TestContainerd.Result run = own.ctr(T, "run", "--rm", "--runtime", "io.containerd.kiln.v2",
                    TestContainerd.IMAGE, "s1", "echo", "hi");
            assertThat(run.out()).as(run.err()).isEqualTo("hi\n");
            ProcessHandle spare = idleSpares(own, 1).getFirst();
            own.stopDaemon();
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (spare.isAlive() && System.nanoTime() < deadline) Thread.sleep(100);
            assertThat(spare.isAlive()).as("the spare 10 s after containerd stopped").isFalse();
            // the pool's second spare too (it may have been starting: it then finds the socket gone once idle)
            deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (!own.spares().isEmpty() && System.nanoTime() < deadline) Thread.sleep(100);
            assertThat(own.spares()).as("spares 30 s after containerd stopped").isEmpty();
            // the spare removed its fifo and the pool of a containerd that is gone (fifo tick, log): nothing left
            assertThat(Spare.pool(own.socket.toString())).as("the stopped containerd's spare pool").doesNotExist();
        }
    }

    /**
     * A spare idle and warm before the node's first pod VM (its warm-up skipped the vm path: no VM caches yet) warms
     * the vm path once a kiln-vm pod's Create has made them, while it still waits: the next kiln-vm pod that claims
     * it does not meet that path cold (the quiet suite's slowest kiln-vm pod did). And the kiln-vm pod's shim, which
     * claimed a spare while another waited, starts the next spare only once its guest has started the pod (the
     * relay's timings.json), not while the VM boots (3 s after the claim, before).
     */
    @Test
    @Tag("slow")
    void aVmPodsSparesWarmTheVmPathAndWaitForItsBoot() throws Exception {
        assertThat(containerd.dir.resolve("kiln/kernels")).as("a VM made before this test").doesNotExist();
        Path log = Spare.pool(containerd.socket.toString()).resolve("spares.log");
        Pod first = Pod.run("vm-warm-first");   // the pool is made by a node's first pod
        List<Long> idle = pids(idleSpares(containerd, 2));
        for (long pid : idle) waitFor(log, "spare " + pid + ": idle ");   // warmed, without the vm path
        assertThat(Files.readString(log)).doesNotContain("warmed the vm path");
        List<Long> before = pids(containerd.shims());
        // the node's first pod VM: its sandbox's Create makes the kernel, initramfs and library caches
        String pod = cri.call("RunPodSandbox", RunPodSandboxRequest.newBuilder().setConfig(Pod.config("vm-first"))
                .setRuntimeHandler("kiln-vm").build(), RunPodSandboxResponse.getDefaultInstance()).getPodSandboxId();
        try {
            List<Long> claimed = pids(containerd.shims());
            claimed.removeAll(before);
            List<Long> waiting = new ArrayList<>(idle);
            waiting.removeAll(claimed);
            assertThat(waiting).as("a spare idle before the VM pod, not claimed by it").isNotEmpty();
            Path booted = containerd.dir.resolve("state/io.containerd.runtime.v2.task/k8s.io").resolve(pod)
                    .resolve("kiln-vm/vm/timings.json");
            boolean bootedAtNext = false;
            long deadline = System.nanoTime() + T.toNanos();
            while (System.nanoTime() < deadline) {
                boolean bootedBefore = Files.exists(booted);   // looked at first: the spare may start in between
                List<Long> spares = pids(containerd.spares());
                spares.removeAll(idle);
                if (!spares.isEmpty()) {
                    bootedAtNext = bootedBefore;
                    break;
                }
                Thread.sleep(20);
            }
            assertThat(bootedAtNext).as("the guest had started the pod when the next spare started; spares.log:\n%s\n"
                    + "containerd's log:\n%s", Files.readString(log), containerd.log().lines()
                    .filter(l -> l.contains("spare")).toList()).isTrue();
            for (long pid : waiting) waitFor(log, "spare " + pid + ": warmed the vm path");
        } finally {
            cri.call("StopPodSandbox", StopPodSandboxRequest.newBuilder().setPodSandboxId(pod).build(),
                    StopPodSandboxResponse.getDefaultInstance());
            cri.call("RemovePodSandbox", RemovePodSandboxRequest.newBuilder().setPodSandboxId(pod).build(),
                    RemovePodSandboxResponse.getDefaultInstance());
            first.remove();
        }
        waitNoShims();
    }

    /** Waits up to 60 s for {@code line} in {@code log}. */
    private static void waitFor(Path log, String line) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            if (Files.exists(log) && Files.readString(log).contains(line)) return;
            Thread.sleep(200);
        }
        throw new AssertionError("no \"" + line + "\" in " + log + " within 60 s:\n" + Files.readString(log));
    }

    /** At least {@code n} idle spares of {@code c}, waiting up to 60 s for them to be started. */
    private static List<ProcessHandle> idleSpares(TestContainerd c, int n) throws InterruptedException {
        Path pool = Spare.pool(c.socket.toString());
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            List<ProcessHandle> idle = c.spares().stream()
                    .filter(p -> Files.exists(pool.resolve(p.pid() + ".idle"))).toList();
            if (idle.size() >= n) return idle;
            Thread.sleep(100);
        }
        throw new AssertionError("not " + n + " idle spares within 60 s; spares: " + c.spares());
    }

    private static List<Long> pids(List<ProcessHandle> ps) {
        return new ArrayList<>(ps.stream().map(ProcessHandle::pid).toList());
    }

    private static void waitNoShims() throws InterruptedException {
        long gone = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!containerd.shims().isEmpty() && System.nanoTime() < gone) Thread.sleep(100);
        assertThat(containerd.shims()).as("shims of removed pods").isEmpty();
    }

    /** A kiln pod of one busybox container that sleeps. */
    private record Pod(String id, String name, String container) {
        static Pod run(String name) {
            return sandbox(name).start();
        }

        /** The pod's sandbox only (RunPodSandbox); {@link #start} adds its container. */
        static Pod sandbox(String name) {
            String pod = cri.call("RunPodSandbox", RunPodSandboxRequest.newBuilder().setConfig(config(name))
                    .setRuntimeHandler("kiln").build(), RunPodSandboxResponse.getDefaultInstance()).getPodSandboxId();
            return new Pod(pod, name, null);
        }

        private static PodSandboxConfig config(String name) {
            return PodSandboxConfig.newBuilder()
                    .setMetadata(PodSandboxMetadata.newBuilder().setName(name).setUid(name + "-uid")
                            .setNamespace("default"))
                    .setHostname(name).setLogDirectory(containerd.dir.resolve("logs").resolve(name).toString())
                    .build();
        }

        /** This pod with its container (CreateContainer + StartContainer). */
        Pod start() {
            String pod = id;
            PodSandboxConfig sandbox = config(name);
            String id = cri.call("CreateContainer", CreateContainerRequest.newBuilder().setPodSandboxId(pod)
                    .setSandboxConfig(sandbox).setConfig(ContainerConfig.newBuilder()
                            .setMetadata(ContainerMetadata.newBuilder().setName("main"))
                            .setImage(ImageSpec.newBuilder().setImage(TestContainerd.IMAGE))
                            .addCommand("sleep").addArgs("600").setLogPath("main.log"))
                    .build(), CreateContainerResponse.getDefaultInstance()).getContainerId();
            cri.call("StartContainer", StartContainerRequest.newBuilder().setContainerId(id).build(),
                    StartContainerResponse.getDefaultInstance());
            return new Pod(pod, name, id);
        }

        ExecSyncResponse exec(String... cmd) {
            return cri.call("ExecSync", ExecSyncRequest.newBuilder().setContainerId(container)
                    .addAllCmd(List.of(cmd)).setTimeout(30).build(), ExecSyncResponse.getDefaultInstance());
        }

        void remove() {
            cri.call("StopPodSandbox", StopPodSandboxRequest.newBuilder().setPodSandboxId(id).build(),
                    StopPodSandboxResponse.getDefaultInstance());
            cri.call("RemovePodSandbox", RemovePodSandboxRequest.newBuilder().setPodSandboxId(id).build(),
                    RemovePodSandboxResponse.getDefaultInstance());
        }
    }
}
