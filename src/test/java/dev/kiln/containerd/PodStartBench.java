package dev.kiln.containerd;

import dev.kiln.containerd.cri.*;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * bench/pod-start's driver (not a test): a private containerd with the CRI plugin (CriTest's set-up), and for each
 * runtime handler — containerd's own {@code runc} ({@code io.containerd.runc.v2}) and kiln's — N pods timed from
 * RunPodSandbox to the first container running (StartContainer returned), each pod then stopped and removed.
 * Prints one line per sample: {@code HANDLER<TAB>pod-start<TAB>SECONDS}; a handler that fails prints
 * {@code HANDLER<TAB>error<TAB>MESSAGE} and the next one is tried.
 *
 * <p>Arguments: {@code [--interleave] RUNS HANDLER...} (e.g. {@code 5 runc kiln kiln-gvisor}); with
 * {@code --interleave}, pod i of each handler in turn rather than all of one handler's pods in a row. With {@code KILN_POD_START_LOG=FILE}
 * in the environment, containerd runs at debug level and its log (the shims' lines included: each shim's stderr is
 * its bundle's log fifo, which containerd copies into its own) is copied to FILE at the end: where a pod's time goes;
 * a kiln-vm pod then also prints {@code kiln-vm<TAB>phases<TAB>...}: ms from RunPodSandbox to its return
 * ({@code sandbox}), CreateContainer's and StartContainer's ({@code created}, {@code started}), the ExecSync that ends
 * the measure ({@code exec}); its VM's relay start, QEMU's exec, the guest's HELLO and the pause process's start
 * (from vm/vmm.pid and the relay's timings.json; {@code uptimeAtHello} the guest's own clock then); and three more
 * ExecSyncs' own times ({@code exec+N}: what an exec costs once the container runs).
 * The handler name {@code peer} times the shell command {@code KILN_POD_START_PEER} instead of a pod ({@link #peer}).
 */
public final class PodStartBench {
    private PodStartBench() {
    }

    public static void main(String[] args) throws Exception {
        boolean interleave = args[0].equals("--interleave");
        if (interleave) args = java.util.Arrays.copyOfRange(args, 1, args.length);
        int runs = Integer.parseInt(args[0]);
        List<String> handlers = List.of(args).subList(1, args.length);
        Path dir = Files.createTempDirectory("kb");
        String keepLog = System.getenv("KILN_POD_START_LOG");
        try (TestContainerd containerd = CriSetup.start(dir, keepLog == null ? "" : "[debug]\n  level = \"debug\"\n");
             CriClient cri = new CriClient(containerd.socket)) {
            if (interleave) {
                // pod i of every handler, then pod i+1...: a load that drifts during the run (other work on the
                // node) weighs on every handler alike
                List<String> failed = new ArrayList<>();
                for (String handler : handlers) {
                    if (!warm(cri, containerd, handler)) failed.add(handler);
                }
                for (int i = 0; i < runs; i++) {
                    for (String handler : handlers) {
                        if (failed.contains(handler)) continue;
                        try {
                            System.out.printf("%s\tpod-start\t%.4f%n", handler, pod(cri, containerd, handler, "p" + i));
                        } catch (RuntimeException e) {
                            failed.add(handler);
                            error(handler, e);
                        }
                    }
                }
            } else {
                for (String handler : handlers) {
                    try {
                        pod(cri, containerd, handler, "warm");   // images and caches warm, not counted
                        for (int i = 0; i < runs; i++) {
                            double s = pod(cri, containerd, handler, "p" + i);
                            System.out.printf("%s\tpod-start\t%.4f%n", handler, s);
                        }
                    } catch (RuntimeException e) {
                        error(handler, e);
                    }
                }
            }
            if (keepLog != null) Files.copy(containerd.dir.resolve("containerd.log"), Path.of(keepLog),
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } finally {
            CriSetup.removeBridge();
        }
    }

    /** The untimed first pod of {@code handler} (images and caches warm); false, with its error printed, if it failed. */
    private static boolean warm(CriClient cri, TestContainerd containerd, String handler) {
        try {
            pod(cri, containerd, handler, "warm");
            return true;
        } catch (RuntimeException e) {
            error(handler, e);
            return false;
        }
    }

    private static void error(String handler, RuntimeException e) {
        System.out.printf("%s\terror\t%s%n", handler, String.valueOf(e.getMessage()).lines().findFirst().orElse(""));
    }

    /**
     * The "handler" {@code peer}: the shell command in {@code KILN_POD_START_PEER} (e.g. a {@code kiln run --rm
     * --isolation vm} against a kilnd of its own), timed as a pod is, so that with {@code --interleave} each pod has
     * its peer measured seconds away from it (kiln-vm's goal is a ratio to {@code kiln run --isolation vm}).
     */
    private static double peer() {
        try {
            long a = System.nanoTime();
            Process p = new ProcessBuilder("sh", "-c", System.getenv("KILN_POD_START_PEER")).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            if (p.waitFor() != 0) throw new IllegalStateException("the peer command failed: exit " + p.exitValue());
            return (System.nanoTime() - a) / 1e9;
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** PSS (MB) of the VM's host processes: QEMU, virtiofsd and the relays of this containerd's pods. */
    private static double vmPssMb(TestContainerd containerd) {
        long kb = 0;
        for (ProcessHandle p : ProcessHandle.allProcesses().toList()) {
            String c = p.info().commandLine().orElse("");
            if (!c.contains(containerd.dir.toString()) || !(c.contains("qemu") || c.contains("virtiofsd")
                    || c.contains("--relay-"))) continue;
            try {
                for (String line : Files.readAllLines(Path.of("/proc", Long.toString(p.pid()), "smaps_rollup"))) {
                    if (line.startsWith("Pss:")) kb += Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            } catch (java.io.IOException | RuntimeException gone) {
                // ended meanwhile
            }
        }
        return kb / 1024.0;
    }

    private static String ms(String step, long since) {
        return step + "=" + (System.nanoTime() - since) / 1_000_000;
    }

    /**
     * The pod VM's own points (ms from RunPodSandbox): its relay's start (vm/vmm.pid's time), and from the relay's
     * timings.json the guest's HELLO, its uptime then, and the pause process's start (START answered).
     */
    private static String vmPhases(TestContainerd containerd, String pod, long wallA) {
        Path vm = containerd.dir.resolve("state/io.containerd.runtime.v2.task/k8s.io").resolve(pod)
                .resolve("kiln-vm/vm");
        try {
            long relay = Files.getLastModifiedTime(vm.resolve("vmm.pid")).toMillis() - wallA;
            String t = Files.readString(vm.resolve("timings.json"));
            java.util.function.ToLongFunction<String> field = k -> {
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("\"" + k + "\":(-?\\d+)").matcher(t);
                return m.find() ? Long.parseLong(m.group(1)) : -1;
            };
            return "relay=" + relay + " vmmExec=" + (relay + field.applyAsLong("vmmExecMs")) + " hello="
                    + (relay + field.applyAsLong("helloMs")) + " uptimeAtHello=" + field.applyAsLong("guestUptimeAtHelloMs")
                    + " guestStarted=" + (relay + field.applyAsLong("startedMs"));
        } catch (java.io.IOException | RuntimeException e) {
            return "vm-files=" + e.getClass().getSimpleName();
        }
    }

    private static double pod(CriClient cri, TestContainerd containerd, String handler, String name) {
        if (handler.equals("peer")) return peer();
        PodSandboxConfig sandbox = PodSandboxConfig.newBuilder()
                .setMetadata(PodSandboxMetadata.newBuilder().setName(handler + "-" + name).setUid(handler + name)
                        .setNamespace("bench"))
                .setHostname(name).setLogDirectory(containerd.dir.resolve("logs").resolve(handler + name).toString())
                .build();
        long a = System.nanoTime();
        long wallA = System.currentTimeMillis();
        List<String> steps = new ArrayList<>();
        String pod = cri.call("RunPodSandbox", RunPodSandboxRequest.newBuilder().setConfig(sandbox)
                .setRuntimeHandler(handler).build(), RunPodSandboxResponse.getDefaultInstance()).getPodSandboxId();
        steps.add(ms("sandbox", a));
        List<String> ids = new ArrayList<>();
        try {
            String id = cri.call("CreateContainer", CreateContainerRequest.newBuilder().setPodSandboxId(pod)
                    .setSandboxConfig(sandbox).setConfig(ContainerConfig.newBuilder()
                            .setMetadata(ContainerMetadata.newBuilder().setName("main"))
                            .setImage(ImageSpec.newBuilder().setImage(TestContainerd.IMAGE))
                            .addCommand("sleep").addArgs("600").setLogPath("main.log"))
                    .build(), CreateContainerResponse.getDefaultInstance()).getContainerId();
            ids.add(id);
            steps.add(ms("created", a));
            cri.call("StartContainer", StartContainerRequest.newBuilder().setContainerId(id).build(),
                    StartContainerResponse.getDefaultInstance());
            steps.add(ms("started", a));
            if (handler.equals("kiln-vm")) {
                // the container runs once the guest booted and started it: it answers an exec from inside
                while (cri.call("ExecSync", ExecSyncRequest.newBuilder().setContainerId(id).addCmd("true")
                        .setTimeout(30).build(), ExecSyncResponse.getDefaultInstance()).getExitCode() != 0) {
                    Thread.sleep(50);
                }
                double s = (System.nanoTime() - a) / 1e9;
                System.out.printf("%s	vm-memory	%.1f%n", handler, vmPssMb(containerd));
                if (System.getenv("KILN_POD_START_LOG") != null) {
                    steps.add("exec=" + Math.round(s * 1000));
                    for (int i = 0; i < 3; i++) { // more execs: what one costs once the container runs
                        long b = System.nanoTime();
                        cri.call("ExecSync", ExecSyncRequest.newBuilder().setContainerId(id).addCmd("true")
                                .setTimeout(30).build(), ExecSyncResponse.getDefaultInstance());
                        steps.add(ms("exec+" + (i + 1), b));
                    }
                    System.out.printf("%s	phases	%s %s%n", handler, String.join(" ", steps),
                            vmPhases(containerd, pod, wallA));
                }
                return s;
            }
            return (System.nanoTime() - a) / 1e9;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } finally {
            cri.call("StopPodSandbox", StopPodSandboxRequest.newBuilder().setPodSandboxId(pod).build(),
                    StopPodSandboxResponse.getDefaultInstance());
            cri.call("RemovePodSandbox", RemovePodSandboxRequest.newBuilder().setPodSandboxId(pod).build(),
                    RemovePodSandboxResponse.getDefaultInstance());
        }
    }
}
