package dev.kiln.reliability;

import dev.kiln.testing.KilndProcess;
import dev.kiln.testing.VmTests;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * kilnd dies with SIGKILL while it makes a VM snapshot (docs/vm.md, "Snapshot start": the template boot a VM start
 * waits for): the template's relay and QEMU go with it, nothing of the template is left but its directory, which the
 * next kilnd's first VM start replaces with a snapshot of its own. A restored VM that already runs is the sandbox's, not
 * kilnd's: it outlives kilnd and is re-adopted like any VM (DaemonCrashTest).
 */
@Tag("slow")
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class VmSnapshotCrashTest {

    @TempDir
    Path tmp;
    Path root;
    Path runRoot;
    KilndProcess kilnd;
    KilnCli kiln;

    @AfterEach
    void cleanUp() {
        DaemonProcessTest.stop(kiln, kilnd, root, runRoot);
    }

    @Test
    void kill9WhileMakingTheSnapshotLeavesNothingAndTheNextDaemonMakesIt() throws Exception {
        VmTests.require();
        root = tmp.resolve("root");
        runRoot = tmp.resolve("run");
        kilnd = KilndProcess.start(root, runRoot, "vm-snapshot: true\n");
        kiln = new KilnCli(kilnd);
        String image = BusyboxImage.importInto(kiln, tmp);

        Process run = new ProcessBuilder(kilnd.cli("run", "-d", "--isolation", "vm", "--network", "none", image,
                "true")).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (template().isEmpty()) {
                assertThat(System.nanoTime()).as("a template QEMU started").isLessThan(deadline);
                Thread.sleep(50);
            }
            Thread.sleep(300); // well inside its boot
            kilnd.kill9();
        } finally {
            run.destroyForcibly();
            run.waitFor(10, TimeUnit.SECONDS);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!Leftovers.processesUnder(root).isEmpty() && System.nanoTime() < deadline) Thread.sleep(50);
        assertThat(Leftovers.processesUnder(root).stream().map(Leftovers::cmdline).toList())
                .as("the template's relay and QEMU after kilnd's SIGKILL").isEmpty();
        assertThat(snapshotDirs()).as("no finished snapshot").noneMatch(d -> Files.exists(d.resolve("state"))
                && !d.getFileName().toString().endsWith(".tmp"));

        kilnd.restart();
        KilnCli.Result r = kiln.process(java.time.Duration.ofSeconds(150), "run", "--rm", "--isolation", "vm",
                "--network", "none", image, "echo", "restored");
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).isEqualTo("restored\n");
        List<Path> dirs = snapshotDirs();
        assertThat(dirs).as("one snapshot, no template left").hasSize(1);
        assertThat(dirs.getFirst().resolve("state")).isRegularFile();
        assertThat(dirs.getFirst().getFileName().toString()).doesNotEndWith(".tmp");
    }

    /** The template's QEMU: booted with kiln.snapshot, not restoring. */
    private List<ProcessHandle> template() {
        return Leftovers.processesUnder(root).stream().map(p -> Leftovers.cmdline(p))
                .filter(c -> c.contains("qemu-system") && c.contains("kiln.snapshot") && !c.contains("-incoming"))
                .map(c -> ProcessHandle.of(Long.parseLong(c.substring(0, c.indexOf(':')))).orElse(null))
                .filter(java.util.Objects::nonNull).toList();
    }

    private List<Path> snapshotDirs() throws Exception {
        Path dir = root.resolve("vm-snapshots");
        if (!Files.isDirectory(dir)) return List.of();
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(Files::isDirectory).toList();
        }
    }
}
