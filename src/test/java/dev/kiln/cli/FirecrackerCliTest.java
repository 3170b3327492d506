package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.isolation.vm.Firecracker;
import dev.kiln.testing.Command;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code kiln run --runtime firecracker} as a user drives it. Where the firecracker binary or a working /dev/kvm is
 * missing (these machines: no Debian package, and a nested /dev/kvm that refuses VMs), the run must fail at create
 * with exit 125 and one line naming what is missing, never fall back to QEMU; where both are there, the same life-cycle
 * as QEMU's VMs (SandboxCliTest) must hold, and otherwise that test skips with exactly what is missing.
 */
class FirecrackerCliTest {

    @TempDir
    static Path root;
    static KilnRun kiln;
    static final String IMAGE = "kiln-test/busybox:1";

    @BeforeAll
    static void image() throws Exception {
        kiln = new KilnRun(root);
        kiln.importBusybox(IMAGE, java.util.Map.of());
    }

    @AfterAll
    static void stop() {
        kiln.close();
    }

    @Test
    void withoutFirecrackerOrKvmTheRunFailsWithOneLineNamingWhatIsMissing() {
        List<String> missing = Firecracker.missing();
        Assumptions.assumeFalse(missing.isEmpty(), "firecracker and a working /dev/kvm are both here");
        String expected = "kiln: the firecracker runtime needs the firecracker binary and /dev/kvm: "
                + String.join("; ", missing) + " (use --runtime qemu)";
        for (List<String> args : List.of(List.of("run", "--rm", "--runtime", "firecracker", IMAGE, "echo", "hi"),
                List.of("run", "-d", "--runtime", "firecracker", IMAGE, "true"),
                List.of("run", "--rm", "--isolation", "vm", "--runtime", "firecracker", IMAGE, "echo", "hi"))) {
            KilnRun.Result r = kiln.kiln(args.toArray(String[]::new));
            assertThat(r.exitCode()).as(args + ": " + r.err()).isEqualTo(125);
            assertThat(r.out()).as("nothing ran (no QEMU in its place)").isEmpty();
            assertThat(r.errLines()).as(args.toString()).containsExactly(expected);
        }
        assertThat(kiln.ok("ps", "-a", "-q").out()).as("no sandbox is left behind").isEmpty();
    }

    /** The real thing: skips here with the precise reason (no binary; /dev/kvm refusing nested VMs). */
    @Test
    @Tag("slow")
    void runExecStopAndExitCodesOnFirecracker() throws Exception {
        assumeFirecracker();

        KilnRun.Result hi = kiln.kiln("run", "--rm", "--runtime", "firecracker", IMAGE, "echo", "hi");
        assertThat(hi.exitCode()).as(hi.err()).isZero();
        assertThat(hi.out()).isEqualTo("hi\n");
        assertThat(kiln.kiln("run", "--rm", "--runtime", "firecracker", IMAGE, "sh", "-c", "exit 7").exitCode())
                .isEqualTo(7);
        assertThat(kiln.kiln("run", "--rm", "--runtime", "firecracker", IMAGE, "no-such-command").exitCode())
                .isEqualTo(127);

        String name = "fc-life";
        kiln.ok("run", "-d", "--name", name, "--runtime", "firecracker", IMAGE, "sh", "-c",
                "trap 'echo bye; exit 0' TERM; echo started; while true; do sleep 0.2; done");
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (!kiln.ok("logs", name).out().contains("started")) {
            assertThat(System.nanoTime()).as("waiting for the guest's first line").isLessThan(deadline);
            Thread.sleep(100);
        }
        KilnRun.Result exec = kiln.kiln("exec", name, "sh", "-c", "echo from exec; exit 3");
        assertThat(exec.exitCode()).as(exec.err()).isEqualTo(3);
        assertThat(exec.out()).isEqualTo("from exec\n");
        assertThat(kiln.withStdin("piped\n".getBytes(), "exec", "-i", name, "cat").out()).isEqualTo("piped\n");
        JsonNode inspect = new ObjectMapper().readTree(kiln.ok("inspect", name).out()).get(0);
        assertThat(inspect.at("/HostConfig/Isolation").asText()).isEqualTo("vm");
        kiln.ok("stop", "-t", "5", name);
        assertThat(kiln.ok("logs", name).out()).contains("started\n").contains("bye\n");
        assertThat(kiln.ok("wait", name).out().strip()).isEqualTo("0");
        kiln.ok("rm", name);

        kiln.ok("run", "-d", "--name", "fc-kill", "--runtime", "firecracker", IMAGE, "sleep", "600");
        kiln.ok("kill", "fc-kill");
        assertThat(kiln.ok("wait", "fc-kill").out().strip()).isEqualTo("137");
        kiln.ok("rm", "fc-kill");
    }

    /**
     * A Firecracker VM's checkpoint through its snapshot API (docs/checkpoint.md, "Firecracker"): a counter kept in
     * memory counts on after {@code start --checkpoint}; kiln-init's channel comes back after Firecracker's vsock
     * reset (exec works); pause and unpause; {@code --leave-running} refused in one line. Skips here with exactly
     * what is missing (no binary; a /dev/kvm that refuses VMs): the API side is FirecrackerCheckpointTest's.
     */
    @Test
    @Tag("slow")
    void aFirecrackerVmCountsOnAfterItsCheckpointIsRestored() throws Exception {
        assumeFirecracker();
        String name = "fc-ckpt";
        kiln.ok("run", "-d", "--name", name, "--runtime", "firecracker", "--network", "none", IMAGE, "sh", "-c",
                "i=0; while true; do i=$((i+1)); echo n $i; sleep 0.2; done");
        awaitCount(name, 5);
        KilnRun.Result kept = kiln.kiln("checkpoint", "create", "--leave-running", name, "c0");
        assertThat(kept.exitCode()).isEqualTo(125);
        assertThat(kept.errLines()).hasSize(1);
        assertThat(kept.err()).contains("cannot --leave-running");
        kiln.ok("pause", name);
        int paused = last(name);
        Thread.sleep(1000);
        assertThat(last(name)).as("nothing counts while paused").isEqualTo(paused);
        kiln.ok("unpause", name);
        awaitCount(name, paused + 3);

        kiln.ok("checkpoint", "create", name, "c1");
        int before = last(name);
        kiln.ok("start", "--checkpoint", "c1", name);
        awaitCount(name, before + 5);
        List<Integer> counted = kiln.ok("logs", name).out().lines().filter(l -> l.startsWith("n "))
                .map(l -> Integer.parseInt(l.substring(2).strip())).toList();
        assertThat(counted.getFirst()).isEqualTo(1);
        assertThat(counted).as("counted on from " + before + ", not from 1").contains(before + 1)
                .doesNotHaveDuplicates();
        KilnRun.Result exec = kiln.kiln("exec", name, "echo", "channel back");
        assertThat(exec.out()).as(exec.err()).isEqualTo("channel back\n");
        kiln.ok("rm", "-f", name);
    }

    /**
     * The snapshot start on Firecracker (docs/vm.md, "On Firecracker"): with {@code vm-snapshot: true}, the first
     * {@code --network none} VM makes the shape's template; two later VMs restored from it run the command and differ
     * in boot_id and random stream, with the host's date; exec works over the channel kiln-init connected again.
     * Skips here with exactly what is missing: the API side is FirecrackerSnapshotTest's.
     */
    @Test
    @Tag("slow")
    void twoFirecrackerVmsFromOneSnapshotRunTheCommandAndShareNoRandomness(@TempDir Path snapRoot) throws Exception {
        assumeFirecracker();
        java.nio.file.Path config = java.nio.file.Files.writeString(snapRoot.resolve("config.yaml"),
                "vm-snapshot: true\n");
        try (KilnRun snap = new KilnRun(snapRoot, config)) {
            snap.importBusybox(IMAGE, java.util.Map.of());
            String self = "cat /proc/sys/kernel/random/boot_id; busybox od -An -N16 -tx1 /dev/urandom | tr -d ' \\n';"
                    + " echo; busybox date +%s";
            List<List<String>> selves = new java.util.ArrayList<>();
            for (int i = 0; i < 3; i++) { // the first makes the template, the other two are restored from it
                KilnRun.Result r = snap.kiln("run", "--rm", "--runtime", "firecracker", "--network", "none", IMAGE,
                        "sh", "-c", self);
                assertThat(r.exitCode()).as(r.err()).isZero();
                selves.add(r.out().lines().toList());
            }
            try (var names = java.nio.file.Files.list(snap.store().resolve("vm-snapshots"))) {
                assertThat(names.filter(java.nio.file.Files::isDirectory).count()).as("one template").isEqualTo(1);
            }
            assertThat(selves.get(1).get(0)).as("boot_id").isNotEqualTo(selves.get(2).get(0));
            assertThat(selves.get(1).get(1)).as("urandom").isNotEqualTo(selves.get(2).get(1));
            long now = System.currentTimeMillis() / 1000;
            assertThat(Long.parseLong(selves.get(2).get(2).strip())).as("the guest's date").isBetween(now - 60, now + 5);
            snap.ok("run", "-d", "--name", "fc-snap", "--runtime", "firecracker", "--network", "none", IMAGE,
                    "sleep", "600");
            KilnRun.Result exec = snap.kiln("exec", "fc-snap", "echo", "channel");
            assertThat(exec.out()).as(exec.err()).isEqualTo("channel\n");
            snap.ok("rm", "-f", "fc-snap");
        }
    }

    private static int last(String name) {
        List<String> n = kiln.ok("logs", name).out().lines().filter(l -> l.startsWith("n ")).toList();
        return n.isEmpty() ? 0 : Integer.parseInt(n.getLast().substring(2).strip());
    }

    private static void awaitCount(String name, int atLeast) throws InterruptedException {
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (last(name) < atLeast) {
            assertThat(System.nanoTime()).as(name + " counting to " + atLeast).isLessThan(deadline);
            Thread.sleep(200);
        }
    }

    /** Skips with exactly what is missing here (no binary; a /dev/kvm that refuses VMs; no mkfs.erofs). */
    private static void assumeFirecracker() {
        List<String> missing = Firecracker.missing();
        Assumptions.assumeTrue(missing.isEmpty(), String.join("; ", missing));
        Command.require("mkfs.erofs", "erofs-utils");
    }
}
