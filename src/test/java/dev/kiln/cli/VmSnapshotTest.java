package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testing.Command;
import dev.kiln.testing.NetworkTests;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static dev.kiln.cli.NetworkCliTest.freePort;
import static dev.kiln.cli.NetworkCliTest.get;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Snapshot start of the vm isolation (docs/vm.md, "Snapshot start") as a user drives it, with {@code vm-snapshot: true}
 * in kilnd's config: real QEMU (TCG here), the host's kernel, kiln-init, the jail. The first VM of a shape makes the
 * snapshot (one template boot), every VM restores it: two bridged VMs restored from one snapshot run the image's
 * command, serve a published port, exec, and each has its own boot_id, random stream, MAC, address and hostname, and
 * the host's time; a VM without a card restores a snapshot of its own and takes {@code -it}; a snapshot recorded for
 * another kernel or memory size is refused with one line; what a restored VM wrote is on its disk at its next start;
 * a {@code --rm} VM's disk has no journal; a restored VM keeps the disks its template bound where their sizes match.
 * Two template boots and ten restores in all.
 */
@Tag("slow")
class VmSnapshotTest {

    @TempDir
    static Path root;
    static KilnRun kiln;
    static final String IMAGE = "kiln-test/vmsnap-busybox:1";
    /** What a guest tells about itself: boot_id, 16 random bytes, its clock, its card, its address, its name. */
    static final String SELF = "cat /proc/sys/kernel/random/boot_id; busybox od -An -N16 -tx1 /dev/urandom | "
            + "tr -d ' \\n'; echo; busybox date +%s; cat /sys/class/net/eth0/address; "
            + "ip -4 -o addr show eth0 | busybox awk '{print $4}'; hostname";

    @BeforeAll
    static void image() throws Exception {
        dev.kiln.testing.VmTests.require();
        Command.require("iptables-save", "iptables");
        NetworkTests.requireCniPlugins();
        Path config = root.resolve("config.yaml");
        Files.writeString(config, "vm-snapshot: true\n");
        kiln = new KilnRun(root, config);
        kiln.importBusybox(IMAGE, Map.of("www/index.html", "hello from a restored VM\n"));
    }

    @AfterAll
    static void stop() {
        if (kiln != null) kiln.close();
    }

    @Test
    void twoBridgedVmsFromOneSnapshotRunTheImageAndShareNothing() throws Exception {
        int port = freePort();
        List<String> ids = new ArrayList<>();
        try {
            for (int i = 0; i < 2; i++) {
                List<String> args = new ArrayList<>(List.of("run", "-d", "--isolation", "vm"));
                if (i == 0) args.addAll(List.of("-p", port + ":8080"));
                args.addAll(List.of(IMAGE, "httpd", "-f", "-p", "8080", "-h", "/www"));
                ids.add(kiln.ok(args.toArray(String[]::new)).out().strip());
            }
            // the image's command runs and serves the published port; exec works
            assertThat(get("http://127.0.0.1:" + port + "/")).isEqualTo("hello from a restored VM\n");
            List<List<String>> selves = new ArrayList<>();
            long before = System.currentTimeMillis() / 1000;
            for (String id : ids) selves.add(kiln.ok("exec", id, "sh", "-c", SELF).out().lines().toList());
            long after = System.currentTimeMillis() / 1000;
            for (int i = 0; i < 2; i++) {
                List<String> self = selves.get(i);
                JsonNode net = inspect(ids.get(i)).path("NetworkSettings");
                assertThat(self).as(self.toString()).hasSize(6);
                assertThat(self.get(0)).matches("[0-9a-f-]{36}");
                assertThat(self.get(1)).matches("[0-9a-f]{32}");
                // the host's time at START: the snapshot's clock was older
                assertThat(Long.parseLong(self.get(2))).isBetween(before - 5, after + 5);
                assertThat(self.get(3)).isEqualTo(net.path("MacAddress").asText());
                assertThat(self.get(4)).isEqualTo(net.path("IPAddress").asText() + "/"
                        + net.path("IPPrefixLen").asText());
                assertThat(self.get(5)).isEqualTo(ids.get(i).substring(0, 12));
                // the guest reaches its gateway through its own card
                assertThat(kiln.ok("exec", ids.get(i), "busybox", "ping", "-c", "1", "-W", "5",
                        net.path("Gateway").asText()).out()).contains("1 packets received");
            }
            // one snapshot for the shape, made by the first VM; both VMMs restored it (-incoming), neither booted
            assertThat(snapshots().stream().filter(s -> shape(s).contains("nic=true\n"))).hasSize(1);
            // the guest's memory is mapped from the snapshot's ram file (a copy of its own), only the devices' state
            // is loaded (docs/vm.md, "Snapshot start")
            for (String id : ids) {
                assertThat(vmmCommandLine(id)).contains("-incoming defer",
                        "memory-backend-file,id=microvm.ram,size=512M,mem-path=run/mem/ram,share=on")
                        .doesNotContain("-kernel", "-initrd"); // nothing to boot
            }
            // the same memory image, yet no shared secrets or streams
            assertThat(selves.get(0).get(0)).as("boot_id").isNotEqualTo(selves.get(1).get(0));
            assertThat(selves.get(0).get(1)).as("urandom").isNotEqualTo(selves.get(1).get(1));
            assertThat(selves.get(0).get(3)).as("MAC").isNotEqualTo(selves.get(1).get(3));
            assertThat(selves.get(0).get(4)).as("address").isNotEqualTo(selves.get(1).get(4));
        } finally {
            for (String id : ids) kiln.kiln("rm", "-f", id);
        }
    }

    @Test
    void aVmWithoutACardRestoresItsOwnSnapshotAndTakesATerminal() throws Exception {
        Command.require("script", "util-linux");
        String cli = dev.kiln.testing.KilndProcess.projectDir().resolve("bin/kiln") + " --host " + kiln.host()
                + " run --rm -it --isolation vm --network none " + IMAGE + " sh";
        Process p = new ProcessBuilder("script", "-qec", cli, "/dev/null").redirectErrorStream(true).start();
        p.getOutputStream().write("tty; ls /sys/class/net; echo sum=$((6*7)); exit 3\n".getBytes());
        p.getOutputStream().close();
        assertThat(p.waitFor(180, java.util.concurrent.TimeUnit.SECONDS)).as("the VM shell ended").isTrue();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.exitValue()).as(out).isEqualTo(3);
        assertThat(out).contains("/dev/pts/", "sum=42");
        assertThat(out.lines().map(String::strip).toList()).contains("lo").doesNotContain("eth0");
        assertThat(snapshots()).as("a snapshot without a card besides the bridged one").isNotEmpty();
    }

    /** No VM boots: the snapshot found for the shape says it was made for another kernel or memory size. */
    @Test
    void aSnapshotMadeForAnotherKernelOrMemoryIsRefusedWithOneLine() throws Exception {
        kiln.ok("run", "--rm", "--isolation", "vm", "--network", "none", IMAGE, "true"); // made if not yet there
        Path shape = snapshots().stream().filter(s -> shape(s).contains("nic=false\n")).findFirst().orElseThrow()
                .resolve("shape");
        String good = Files.readString(shape);
        try {
            Files.writeString(shape, good.replaceFirst("memory-mib=\\d+", "memory-mib=1024"));
            KilnRun.Result memory = kiln.kiln("run", "--rm", "--isolation", "vm", "--network", "none", IMAGE, "true");
            assertThat(memory.exitCode()).isEqualTo(125);
            assertThat(memory.errLines()).singleElement().asString().startsWith("kiln: the VM snapshot in ")
                    .contains("was made for another VM: memory-mib 1024, not 512", "remove that directory");

            Files.writeString(shape, good.replaceFirst("kernel=[^\\n]*", "kernel=/boot/vmlinuz-other"));
            KilnRun.Result kernel = kiln.kiln("run", "--rm", "--isolation", "vm", "--network", "none", IMAGE, "true");
            assertThat(kernel.exitCode()).isEqualTo(125);
            assertThat(kernel.errLines()).singleElement().asString()
                    .contains("was made for another VM: kernel /boot/vmlinuz-other, not ");
            assertThat(kiln.ok("ps", "-a", "-q").out()).as("no sandbox left by the refusals").isEmpty();
        } finally {
            Files.writeString(shape, good);
        }
    }

    /**
     * The snapshot's memory is a file of its own that restored VMs copy and never write (a VM's writes stay its own),
     * the state file holds only the devices' (tens of KB, not the guest's memory); a memory file of another size is
     * refused by the relay with one line, and nothing is left.
     */
    @Test
    void theSnapshotsMemoryIsMappedAndNoRestoredVmWritesIt() throws Exception {
        kiln.ok("run", "--rm", "--isolation", "vm", "--network", "none", IMAGE, "true"); // made if not yet there
        Path snap = snapshots().stream().filter(s -> shape(s).contains("nic=false\n")).findFirst().orElseThrow();
        Path ram = snap.resolve("ram");
        assertThat(Files.size(ram)).isEqualTo(512L << 20);
        assertThat(Files.size(snap.resolve("state"))).as("only the devices' state").isLessThan(1L << 20);
        String before = sha256(ram);
        var mtime = Files.getLastModifiedTime(ram);
        // a guest that fills tens of MB of its memory (page cache and a shell's variable) and says what it read back
        KilnRun.Result r = kiln.ok("run", "--rm", "--isolation", "vm", "--network", "none", IMAGE, "sh", "-c",
                "busybox dd if=/dev/urandom of=/big bs=1M count=24 2>/dev/null; x=$(busybox od -An -tx1 /big | "
                        + "busybox head -c 4000000); echo ${#x}; busybox md5sum /big | busybox cut -c1-32");
        assertThat(r.out().lines().toList()).hasSize(2).first().isEqualTo("4000000");
        assertThat(sha256(ram)).as("the snapshot's memory after a VM ran from it").isEqualTo(before);
        assertThat(Files.getLastModifiedTime(ram)).isEqualTo(mtime);

        try (var f = java.nio.channels.FileChannel.open(ram, java.nio.file.StandardOpenOption.WRITE)) {
            f.write(java.nio.ByteBuffer.allocate(1), (512L << 20) + 4095); // one page more: not this VM's memory
        }
        try {
            KilnRun.Result bad = kiln.kiln("run", "--rm", "--isolation", "vm", "--network", "none", IMAGE, "true");
            assertThat(bad.exitCode()).isEqualTo(125);
            assertThat(bad.errLines()).singleElement().asString().startsWith("kiln: ")
                    .contains("the snapshot's memory " + ram + " is 536875008 bytes, not the VM's 536870912");
            assertThat(kiln.ok("ps", "-a", "-q").out()).as("no sandbox left by the refusal").isEmpty();
        } finally {
            try (var f = java.nio.channels.FileChannel.open(ram, java.nio.file.StandardOpenOption.WRITE)) {
                f.truncate(512L << 20);
            }
        }
        assertThat(sha256(ram)).isEqualTo(before);
    }

    /**
     * A checkpoint of a VM restored from a snapshot holds the guest's memory (its QEMU still has the restore's
     * x-ignore-shared, which would leave the memory out) and restores into a VM with QEMU's own memory: the counter
     * goes on from where it was.
     */
    @Test
    void aCheckpointOfARestoredVmCountsOn() throws Exception {
        String id = kiln.ok("run", "-d", "--isolation", "vm", "--network", "none", IMAGE, "sh", "-c",
                "i=0; while true; do i=$((i+1)); echo n $i; busybox sleep 0.2; done").out().strip();
        try {
            int before = awaitCount(id, 3);
            assertThat(vmmCommandLine(id)).contains("-incoming defer");
            kiln.ok("checkpoint", "create", id, "c1");
            before = Math.max(before, count(id));
            kiln.ok("start", "--checkpoint", "c1", id);
            awaitCount(id, before + 3);
            List<Integer> ns = kiln.ok("logs", id).out().lines().filter(l -> l.startsWith("n "))
                    .map(l -> Integer.parseInt(l.substring(2).strip())).toList();
            assertThat(ns).as("counted on from " + before + ", not from 1")
                    .isEqualTo(java.util.stream.IntStream.rangeClosed(1, ns.size()).boxed().toList());
        } finally {
            kiln.kiln("rm", "-f", id);
        }
    }

    /**
     * The relay kills a restored VM's QEMU as soon as the guest says it has synced (its BYE, docs/guest-protocol.md),
     * without the kernel's power-off: what the workload wrote without any sync of its own must be on the sandbox's
     * disk for its next start.
     */
    @Test
    void whatARestoredVmWroteIsOnItsDiskAtItsNextStart() throws Exception {
        String script = "if [ -f /kept/sum ]; then cat /kept/sum; busybox md5sum /kept/data; else mkdir /kept; "
                + "busybox head -c 4194304 /dev/urandom > /kept/data; busybox md5sum /kept/data > /kept/sum; fi";
        String id = kiln.ok("run", "-d", "--isolation", "vm", "--network", "none", IMAGE, "sh", "-c", script)
                .out().strip();
        try {
            assertThat(kiln.ok("wait", id).out().strip()).isEqualTo("0");
            List<String> sums = kiln.ok("start", "-a", id).out().lines().map(String::strip).toList();
            assertThat(sums).as("the sum written at the first run, then the file's own at the second").hasSize(2);
            assertThat(sums.get(0)).matches("[0-9a-f]{32}  /kept/data").isEqualTo(sums.get(1));
            Path vm = kiln.store().resolve("sandboxes").resolve(id.substring(0, 12)).resolve("vm");
            assertThat(Files.readString(vm.resolve("timings.json"))).as("restored, not booted")
                    .doesNotContain("\"loadedMs\":-1");
        } finally {
            kiln.kiln("rm", "-f", id);
        }
    }

    /**
     * A {@code --rm} VM's writable disk goes with it, so it has no journal (docs/vm.md, "Snapshot start": its mount
     * starts none, its power-off syncs nothing), and what it writes still works; a kept VM's disk keeps its journal.
     */
    @Test
    void aRunRmVmsWritableDiskHasNoJournalWhereAKeptVmsHasOne() {
        String probe = "echo data > /written && cat /written; busybox ls /proc/fs/jbd2 2>/dev/null; echo end";
        List<String> rm = kiln.ok("run", "--rm", "--isolation", "vm", "--network", "none", IMAGE, "sh", "-c", probe)
                .out().lines().map(String::strip).toList();
        assertThat(rm).as("written, and no journal of any disk").containsExactly("data", "end");
        String kept = kiln.ok("run", "--name", "kept-journal", "--isolation", "vm", "--network", "none", IMAGE, "sh",
                "-c", probe).out();
        try {
            assertThat(kept.lines().map(String::strip).toList()).as(kept).contains("data", "end")
                    .anyMatch(l -> l.matches("vd[a-z]+-\\d+"));
        } finally {
            kiln.kiln("rm", "-f", "kept-journal");
        }
    }

    /**
     * The template binds the disks' driver to placeholders of the sizes a sandbox's disks have (the image disk's span,
     * the default writable disk), so a restored VM whose disks have those sizes is not probed after START, and one
     * whose writable disk is bigger has that disk probed anew at its own size (docs/vm.md, "Snapshot start"). The
     * guest's kernel log holds each probe's size line: the template's lines came with the snapshot.
     */
    @Test
    void aRestoredVmKeepsTheDisksItsTemplateBoundAndProbesADiskOfAnotherSize() {
        String probe = "cat /sys/block/vd*/size; echo written > /f && cat /f; "
                + "busybox dmesg | busybox grep -o '\\[vd[a-z]\\] [0-9]* 512-byte' | busybox awk '{print \"probed \" $2}'";
        long image = (1L << 30) / 512, disk = (2L << 30) / 512, bigger = (3L << 30) / 512;
        List<String> kept = kiln.ok("run", "--rm", "--isolation", "vm", "--network", "none", IMAGE, "sh", "-c", probe)
                .out().lines().map(String::strip).toList();
        assertThat(kept).as("both disks as the template bound them: probed once, before the snapshot")
                .containsExactlyInAnyOrder("" + image, "" + disk, "written", "probed " + image, "probed " + disk);
        List<String> other = kiln.ok("run", "--rm", "--isolation", "vm", "--network", "none", "--disk-size", "3g",
                IMAGE, "sh", "-c", probe).out().lines().map(String::strip).toList();
        assertThat(other).as("the writable disk unbound and probed again at its own size")
                .containsExactlyInAnyOrder("" + image, "" + bigger, "written", "probed " + image, "probed " + disk,
                        "probed " + bigger);
    }

    private static int count(String id) {
        return kiln.ok("logs", id).out().lines().filter(l -> l.startsWith("n ")).mapToInt(l -> Integer.parseInt(
                l.substring(2).strip())).max().orElse(0);
    }

    private static int awaitCount(String id, int want) throws Exception {
        long deadline = System.currentTimeMillis() + 120_000;
        int n;
        while ((n = count(id)) < want) {
            assertThat(System.currentTimeMillis()).as("counted to " + want).isLessThan(deadline);
            Thread.sleep(200);
        }
        return n;
    }

    private static String sha256(Path file) throws Exception {
        var d = java.security.MessageDigest.getInstance("SHA-256");
        try (var in = Files.newInputStream(file)) {
            byte[] b = new byte[1 << 20];
            for (int n; (n = in.read(b)) > 0; ) d.update(b, 0, n);
        }
        return java.util.HexFormat.of().formatHex(d.digest());
    }

    private static List<Path> snapshots() throws Exception {
        Path dir = kiln.store().resolve("vm-snapshots");
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(Files::isDirectory).filter(p -> Files.exists(p.resolve("state"))).toList();
        }
    }

    private static String shape(Path snapshot) {
        try {
            return Files.readString(snapshot.resolve("shape"));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static String vmmCommandLine(String id) throws Exception {
        Path vm = kiln.store().resolve("sandboxes").resolve(id.substring(0, 12)).resolve("vm");
        String pid = Files.readString(vm.resolve("vmm.pid")).strip();
        return Files.readString(Path.of("/proc", pid, "cmdline")).replace('\0', ' ');
    }

    private static JsonNode inspect(String id) throws Exception {
        return new ObjectMapper().readTree(kiln.ok("inspect", id).out()).get(0);
    }
}
