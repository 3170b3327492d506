package dev.kiln.isolation.vm;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

class VirtioFsTest {
    @TempDir
    Path tmp;

    /**
     * Two VMs with shares at once (two kiln-vm pods on a node, or a pod beside a kilnd VM with a volume): both
     * virtiofsd serve. Each locks a pid file named after its socket path; with every VM's path the same relative
     * {@code run/fs0.sock}, the second refused to start ("Cannot lock pid file") while the first ran.
     */
    @Test
    void twoVmsShareDirectoriesAtTheSameTime() throws Exception {
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "virtiofsd's mounts need root");
        Assumptions.assumeTrue(Files.isExecutable(VirtioFs.DAEMON), "virtiofsd is not installed");
        List<VirtioFs.Starting> started = new java.util.ArrayList<>();
        try {
            for (String name : List.of("a", "b")) {
                Path source = Files.createDirectories(tmp.resolve("shared-" + name));
                Path vm = Files.createDirectories(tmp.resolve("vm-" + name));
                VirtioFs.Starting s = VirtioFs.spawn(vm, List.of(new VirtioFs.Share(0, source, "/", false)));
                started.add(s);
                s.ready(null);
                assertThat(vm.resolve(VirtioFs.socket(0))).exists();
            }
            assertThat(VirtioFs.lockName(tmp.resolve("vm-a"))).isNotEqualTo(VirtioFs.lockName(tmp.resolve("vm-b")));
        } finally {
            started.forEach(VirtioFs.Starting::abort);
        }
        for (String name : List.of("a", "b")) { // their pid files go with them: one per VM would pile up
            assertThat(VirtioFs.LOCKS.resolve(VirtioFs.lockName(tmp.resolve("vm-" + name)) + ".fs0.sock.pid"))
                    .doesNotExist();
        }
    }

    /**
     * A VM's Create that fails right after its virtiofsd processes were started (a uid range used up, a card that
     * cannot be made) stops them whatever stage they are at: none may live on as a root virtiofsd nothing tracks.
     */
    @Test
    void aStartGivenUpAtOnceLeavesNoProcessBehind() throws Exception {
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "virtiofsd's mounts need root");
        Assumptions.assumeTrue(Files.isExecutable(VirtioFs.DAEMON), "virtiofsd is not installed");
        Path source = Files.createDirectories(tmp.resolve("shared-" + ProcessHandle.current().pid()));
        Path vm = Files.createDirectories(tmp.resolve("vm"));
        for (int round = 0; round < 5; round++) {
            VirtioFs.spawn(vm, List.of(new VirtioFs.Share(0, source, "/", false))).abort();
            Thread.sleep(1500); // a survivor would have become virtiofsd by now
            assertThat(ProcessHandle.allProcesses().filter(p -> p.info().commandLine()
                    .map(c -> c.contains(source.toString())).orElse(false)).map(ProcessHandle::pid).toList())
                    .as("processes of the given-up start, round " + round).isEmpty();
            assertThat(vm.resolve("fs0.pid")).doesNotExist();
        }
    }
}
