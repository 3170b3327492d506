package dev.kiln.isolation.oci;

import dev.kiln.testing.BusyboxRootfs;
import dev.kiln.engine.process.ImageProcess;

import static org.assertj.core.api.Assertions.assertThat;

import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.Resources;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.testing.Command;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The same bundle kiln writes for runc, run by gVisor's runsc (ptrace platform, no network). */
class RunscSandboxTest {

    @TempDir
    Path work;

    private Path dir;
    private Path state;

    @BeforeEach
    void setUp() throws IOException {
        Command.require("runsc", "runsc");
        dir = work.resolve("sandbox");
        BusyboxRootfs.create(dir.resolve(Bundle.ROOTFS));
        state = Files.createDirectories(work.resolve("runsc-state"));
    }

    @Test
    void runsTheSameBundle() throws Exception {
        ProcessSpec process = new ProcessSpec(List.of("sh", "-c",
                "echo hi; id; hostname; pwd; cat /etc/hosts | grep box; exit 7"),
                List.of("PATH=" + ImageProcess.DEFAULT_PATH), "/tmp", 1000, 1000, List.of(1000, 2000), false, false);
        RuntimeRun.Result result = RuntimeRun.runsc(state, write(process, false, Resources.UNLIMITED), idFor());
        assertThat(result.exitCode()).as(result.stderr()).isEqualTo(7);
        assertThat(result.stdout().lines().toList()).containsExactly("hi",
                "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)", "box", "/tmp", "127.0.0.1\tbox");
    }

    @Test
    void readOnlyRootAndCapabilities() throws Exception {
        ProcessSpec process = RuncSandboxTest.process("sh", "-c",
                "grep CapEff /proc/self/status; touch /x && echo wrote; echo done");
        RuntimeRun.Result result = RuntimeRun.runsc(state, write(process, true, Resources.UNLIMITED), idFor());
        // runsc drops CAP_NET_RAW (bit 13) unless started with --net-raw: Docker's set minus that one.
        assertThat(result.stdout()).as(result.stderr()).contains("CapEff:\t00000000a80405fb", "done")
                .doesNotContain("wrote");
        assertThat(result.stderr()).contains("Read-only file system");
    }

    @Test
    void ociSeccompIsAcceptedWhenAskedFor() throws Exception {
        // runsc ignores linux.seccomp by default; with --oci-seccomp the Sentry applies kiln's profile inside.
        ProcessSpec process = RuncSandboxTest.process("sh", "-c", "echo hi; unshare -U true && echo unshared");
        RuntimeRun.Result result =
                RuntimeRun.runscWithOciSeccomp(state, write(process, false, Resources.UNLIMITED), idFor());
        assertThat(result.stdout()).as(result.stderr()).startsWith("hi\n").doesNotContain("unshared");

        RuntimeRun.Result control = RuntimeRun.runsc(state, write(process, false, Resources.UNLIMITED), idFor());
        assertThat(control.stdout()).as("without --oci-seccomp: " + control.stderr()).contains("unshared");
    }

    @Test
    void limitsApplyToTheSandboxsHostCgroup() throws Exception {
        // 20 guest processes under --pids-limit 50: fine for the guest, though the sandbox as a whole needs ~200
        // host tasks on the ptrace platform; the raw limit of 50 would make the Sentry panic at start.
        ProcessSpec process = RuncSandboxTest.process("sh", "-c",
                "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 2 & done; wait; echo ok");
        String id = idFor();
        Bundle bundle = write(id, process, new Resources(500_000_000L, 256L << 20, 50));
        var pending = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
            try {
                return RuntimeRun.runsc(state, bundle, id);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        Path pidsMax = HostCgroup.dir("pids", RuntimeSpec.cgroupsPath(id)).resolve("pids.max");
        Path memoryMax = HostCgroup.dir("memory", RuntimeSpec.cgroupsPath(id)).resolve("memory.limit_in_bytes");
        long deadline = System.nanoTime() + 10_000_000_000L;
        // runsc makes the controllers' directories one after the other: wait for both (or for runsc to be done)
        while (!(Files.exists(memoryMax) && Files.exists(pidsMax)) && System.nanoTime() < deadline
                && !pending.isDone()) {
            Thread.sleep(20);
        }
        if (!Files.exists(pidsMax) || !Files.exists(memoryMax)) {
            RuntimeRun.Result early = pending.get();
            throw new AssertionError("the sandbox's cgroups never appeared; runsc: " + early.stdout() + early.stderr());
        }
        String pids = Files.readString(pidsMax).strip();
        String memory = Files.readString(memoryMax).strip();
        RuntimeRun.Result result = pending.get();
        assertThat(result.stdout()).as(result.stderr()).isEqualTo("ok\n");
        assertThat(pids).isEqualTo(String.valueOf(RuntimeSpec.GVISOR_PIDS_BASE + RuntimeSpec.GVISOR_PIDS_PER_PROCESS * 50));
        assertThat(memory).isEqualTo(String.valueOf(256L << 20));
    }

    @Test
    void outOfMemoryKillsTheSandboxAndIsSeenInKilnsCgroup() throws Exception {
        // The host kernel charges the Sentry's memory to the sandbox's cgroup and, over the limit, kills a host
        // process of the sandbox (the Sentry): the whole sandbox ends, and runsc exits 137.
        String id = idFor();
        HostCgroup.dir("memory", SandboxCgroup.parentPath(id)); // v1 only: v2 counts in memory.events
        Resources limits = new Resources(0, 16L << 20, 0);
        try (SandboxCgroup cgroup = SandboxCgroup.prepare(id, limits.memoryBytes())) {
            RuntimeRun.Result result = RuntimeRun.runsc(state,
                    write(id, RuncSandboxTest.process("sh", "-c", RuncSandboxTest.HOG), limits), id);
            assertThat(result.exitCode()).as(result.stderr()).isEqualTo(137);
            assertThat(result.stdout()).doesNotContain("survived");
            assertThat(cgroup.oomEvents()).isPositive();
        }
        assertThat(RuncSandboxTest.leftovers(id)).isEmpty();

        // a roomier limit for the calm run: under 16 MiB the Sentry's own start-up can brush the limit on a busy host
        Resources roomy = new Resources(0, 64L << 20, 0);
        String calm = idFor();
        try (SandboxCgroup ignored = SandboxCgroup.prepare(calm, roomy.memoryBytes())) {
            RuntimeRun.Result result = RuntimeRun.runsc(state,
                    write(calm, RuncSandboxTest.process("sh", "-c", "echo ok"), roomy), calm);
            assertThat(result.stdout()).as(result.stderr()).isEqualTo("ok\n");
            // no assertion on the raw notice count here: on a busy host the v1 eventfd has fired for calm runs too,
            // which is why the engine also requires a SIGKILL exit before it reports OOMKilled (OomCliTest checks it)
        }
    }

    private Bundle write(ProcessSpec process, boolean readOnly, Resources resources) {
        return write(idFor(), process, readOnly, resources);
    }

    private Bundle write(String id, ProcessSpec process, Resources resources) {
        return write(id, process, false, resources);
    }

    private Bundle write(String id, ProcessSpec process, boolean readOnly, Resources resources) {
        return Bundle.write(new SandboxSpec(id, id, "box", process, dir.resolve(Bundle.ROOTFS), readOnly, resources,
                Map.of(), List.of(), dir), OciRuntime.RUNSC);
    }

    private static String idFor() {
        return "kiln-test-" + UUID.randomUUID().toString().substring(0, 12);
    }
}
