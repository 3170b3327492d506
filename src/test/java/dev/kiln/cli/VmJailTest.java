package dev.kiln.cli;

import static dev.kiln.cli.NetworkCliTest.freePort;
import static dev.kiln.cli.NetworkCliTest.get;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.isolation.vm.jail.SeccompAllowlist;
import dev.kiln.isolation.vm.jail.VmmIds;
import dev.kiln.isolation.vm.jail.VmmJail;
import dev.kiln.testing.NetworkTests;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The jailed VMM as a user drives it (docs/vm.md, "The VMM's jail"): real QEMU (TCG here) in its jail with kiln's
 * seccomp filter and QEMU's own on top. A VM boots, execs, serves a published port and stops; its QEMU runs as the
 * sandbox's uid with no capabilities, no_new_privs, a filter, in a root holding only the jail's paths and a pid
 * namespace of its own; rm leaves nothing (claim, cgroups, mounts). A VMM the kernel kills for a syscall outside its
 * allowlist ends the sandbox with one line, not a hang. Two VM boots.
 */
@Tag("slow")
class VmJailTest {

    @TempDir
    static Path root;
    static KilnRun kiln;
    static final String IMAGE = "kiln-test/jail-busybox:1";

    @BeforeAll
    static void image() throws Exception {
        dev.kiln.testing.VmTests.require();
        NetworkTests.requireCniPlugins();
        kiln = new KilnRun(root);
        kiln.importBusybox(IMAGE, Map.of("www/index.html", "hello from a jailed VM\n"));
    }

    @AfterAll
    static void stop() {
        if (kiln != null) kiln.close();
    }

    @Test
    void aJailedVmBootsExecsServesAPortAndStopsLeavingNothing() throws Exception {
        int port = freePort();
        String id = kiln.ok("run", "-d", "--isolation", "vm", "-p", port + ":8080", IMAGE,
                "httpd", "-f", "-p", "8080", "-h", "/www").out().strip();
        Path vm = kiln.store().resolve("sandboxes").resolve(id.substring(0, 12)).resolve("vm");
        long vmm = vmmPid(vm);
        int uid;
        try {
            assertThat(get("http://127.0.0.1:" + port + "/")).isEqualTo("hello from a jailed VM\n");
            assertThat(kiln.ok("exec", id, "sh", "-c", "echo exec in $(hostname)").out())
                    .isEqualTo("exec in " + id.substring(0, 12) + "\n");

            JsonNode jail = inspect(id).path("HostConfig").path("VmmJail");
            assertThat(jail.path("Enabled").asBoolean()).isTrue();
            uid = jail.path("Uid").asInt();
            assertThat(VmmIds.Range.parse(VmmIds.DEFAULT_RANGE).first()).isLessThanOrEqualTo(uid);
            assertThat(jail.path("Seccomp").asText())
                    .as("every QEMU VM may be checkpointed: the snapshot trait's syscalls are allowed")
                    .isEqualTo(SeccompAllowlist.qemu().allowedCount(Set.of(dev.kiln.isolation.vm.jail.VmmJail.SNAPSHOT))
                            + " syscalls");

            Map<String, String> status = status(vmm);
            assertThat(status.get("Uid")).isEqualTo(uid + "\t" + uid + "\t" + uid + "\t" + uid);
            assertThat(status.get("CapEff")).isEqualTo("0000000000000000");
            assertThat(status.get("CapBnd")).isEqualTo("0000000000000000");
            assertThat(status.get("NoNewPrivs")).isEqualTo("1");
            assertThat(status.get("Seccomp")).isEqualTo("2");
            assertThat(status.get("Seccomp_filters")).isEqualTo("2"); // kiln's, then QEMU's own -sandbox
            assertThat(status.get("NSpid")).isEqualTo(vmm + "\t1"); // PID 1 of its own pid namespace
            for (String ns : List.of("mnt", "pid", "ipc", "uts")) {
                assertThat(Files.readSymbolicLink(Path.of("/proc", Long.toString(vmm), "ns", ns))).as(ns)
                        .isNotEqualTo(Files.readSymbolicLink(Path.of("/proc/self/ns", ns)));
            }

            // its root: the jail's paths and nothing else; no disk, no /dev/net/tun (the relay opened those)
            List<Path> mounts = Files.readAllLines(vm.resolve("jail.mounts")).stream()
                    .map(l -> Path.of(l.substring(l.indexOf('\t') + 1))).toList();
            Set<String> tops = mounts.stream().map(p -> p.getName(0).toString()).collect(Collectors.toSet());
            Path jailRoot = Path.of("/proc", Long.toString(vmm), "root");
            assertThat(names(jailRoot)).isEqualTo(new TreeSet<>(tops));
            assertThat(names(jailRoot.resolve("dev"))).isSubsetOf("null", "urandom", "kvm").contains("null");
            assertThat(mounts).noneMatch(p -> p.toString().endsWith(".erofs") || p.toString().endsWith("disk.ext4")
                    || p.toString().contains("/dev/net"));
            assertThat(Files.isWritable(jailRoot)).as("the jail's root is read-only").isFalse();

            JsonNode timings = new ObjectMapper().readTree(vm.resolve("timings.json").toFile());
            System.out.println("jail set-up (clone to QEMU's exec): " + timings.path("jailMs").asLong() + " ms");
            assertThat(timings.path("jailMs").asLong()).isNotNegative();

            kiln.ok("stop", "-t", "1", id);
            assertThat(ProcessHandle.of(vmm).map(ProcessHandle::isAlive).orElse(false)).isFalse();
        } finally {
            kiln.ok("rm", "-f", id);
        }
        assertThat(kiln.store().resolve("sandboxes").resolve(id.substring(0, 12))).doesNotExist();
        try (Stream<Path> claims = Files.list(kiln.store().resolve("vmm-ids"))) {
            assertThat(claims).isEmpty(); // the uid is free again
        }
        try (Stream<Path> cgroups = Files.find(Path.of("/sys/fs/cgroup"), 6,
                (p, a) -> p.getFileName() != null && p.getFileName().toString().equals(id))) {
            assertThat(cgroups).isEmpty(); // memory and pids
        }
        assertThat(Files.readString(Path.of("/proc/self/mountinfo"))).doesNotContain(id.substring(0, 12));
    }

    /**
     * A real seccomp kill of a real QEMU: the filter of this one sandbox leaves out {@code fdatasync}, which QEMU calls
     * when the guest flushes its writable disk (ext4's journal at mount, the workload's {@code sync}). No signal from
     * outside could stand in for it: QEMU is its pid namespace's init, which ignores every signal it does not handle.
     */
    @Test
    void aVmmKilledByItsFilterEndsTheSandboxWithOneLine() throws Exception {
        System.setProperty(VmmJail.OMIT_PROPERTY, "fdatasync"); // kilnd runs in this JVM (KilnRun)
        String id;
        try {
            id = kiln.ok("run", "-d", "--isolation", "vm", "--network", "none", IMAGE,
                    "sh", "-c", "echo data > /written; sync; sleep 600").out().strip();
        } finally {
            System.clearProperty(VmmJail.OMIT_PROPERTY);
        }
        try {
            Path vm = kiln.store().resolve("sandboxes").resolve(id.substring(0, 12)).resolve("vm");
            long vmm = vmmPid(vm);
            long t0 = System.nanoTime();
            assertThat(kiln.ok("wait", id).out().strip()).isEqualTo("125"); // not a hang: ends as the VMM dies
            System.out.println("a VMM killed by its filter ended its sandbox "
                    + (System.nanoTime() - t0) / 1_000_000 + " ms after its start");
            assertThat(ProcessHandle.of(vmm).map(ProcessHandle::isAlive).orElse(false)).isFalse();
            List<String> lines = kiln.ok("logs", id).err().lines().toList();
            assertThat(lines).containsExactly("kiln: the VMM was killed by its seccomp filter (SIGSYS: a system call "
                    + "outside its allowlist); the VM is gone (see " + vm + "/vmm.log)");
        } finally {
            kiln.ok("rm", "-f", id);
        }
    }

    /** The VMM's pid, once the relay has started it (run -d returns before). */
    private static long vmmPid(Path vm) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!Files.exists(vm.resolve("vmm.pid"))) {
            assertThat(System.nanoTime()).as("the relay starts the VMM").isLessThan(deadline);
            Thread.sleep(20);
        }
        return Long.parseLong(Files.readString(vm.resolve("vmm.pid")).strip());
    }

    private static Map<String, String> status(long pid) throws IOException {
        return Files.readAllLines(Path.of("/proc", Long.toString(pid), "status")).stream()
                .map(l -> l.split(":\\s*", 2)).filter(f -> f.length == 2)
                .collect(Collectors.toMap(f -> f[0], f -> f[1].strip(), (a, b) -> a));
    }

    private static TreeSet<String> names(Path dir) throws IOException {
        try (Stream<Path> list = Files.list(dir)) {
            return list.map(p -> p.getFileName().toString()).collect(Collectors.toCollection(TreeSet::new));
        }
    }

    private static JsonNode inspect(String id) {
        try {
            return new ObjectMapper().readTree(kiln.ok("inspect", id).out()).path(0);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
