package dev.kiln.audit;

import static org.assertj.core.api.Assertions.assertThat;

import dev.kiln.testing.Command;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link Privileges} and {@link SyscallUsage} on processes the test starts with privileges it chose. */
class PrivilegesTest {

    @TempDir
    Path work;

    @Test
    void readsWhatSetprivAndUnshareGaveAProcess() throws Exception {
        Command.require("setpriv", "util-linux");
        // unshare and setpriv exec in place: the pid is sleep's
        Process p = new ProcessBuilder("unshare", "--mount", "--uts", "--ipc", "--", "setpriv", "--reuid=65534",
                "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
                "sleep", "30").start();
        try {
            awaitExec(p.pid(), "sleep");
            Privileges priv = Privileges.of(p.pid());
            assertThat(priv.command()).isEqualTo("sleep");
            assertThat(priv.uid()).containsExactly(65534L, 65534L, 65534L, 65534L);
            assertThat(priv.gid()).containsExactly(65534L, 65534L, 65534L, 65534L);
            assertThat(priv.capabilities()).isEmpty();
            assertThat(priv.allCapabilities()).isFalse();
            assertThat(priv.noNewPrivs()).isTrue();
            assertThat(priv.seccomp()).isZero();
            assertThat(priv.ownNamespaces()).containsExactlyInAnyOrder("mnt", "uts", "ipc");
            assertThat(priv.sharedNamespaces()).contains("pid", "net", "user");
            assertThat(priv.hostRoot()).isTrue();
            assertThat(priv.root()).isEqualTo("/");
            assertThat(priv.deviceFds()).isEmpty();
            assertThat(priv.devicesVisible()).isEqualTo(List.of("/dev/kvm", "/dev/net/tun").stream()
                    .filter(d -> Files.exists(Path.of(d))).toList());
            assertThat(priv.cgroupLimits()).containsKeys("memory", "pids");
        } finally {
            p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void kilndItselfHoldsEveryCapabilityOnTheHostRoot() throws Exception {
        Privileges self = Privileges.of(ProcessHandle.current().pid());
        assertThat(self.uid().get(1)).isZero();
        assertThat(self.hostRoot()).isTrue();
        assertThat(self.ownNamespaces()).isEmpty();
    }

    @Test
    void straceCountsUntilTheWindowClosesAndTheProcessRunsOn() throws Exception {
        Command.require("strace", "strace");
        Process p = new ProcessBuilder("sh", "-c", "while true; do cat /proc/self/stat > /dev/null; sleep 0.1; done")
                .start();
        try {
            SyscallUsage usage = SyscallUsage.attach(List.of(p.pid()), work).finish(java.time.Duration.ofSeconds(2));
            assertThat(usage.ended()).isFalse();
            assertThat(usage.tracedSeconds()).isBetween(1.5, 15.0);
            assertThat(usage.calls()).containsKeys("execve", "openat", "read", "wait4");
            assertThat(usage.distinct()).isEqualTo(usage.calls().size());
            assertThat(p.isAlive()).isTrue();
            try (var left = Files.list(work)) {
                assertThat(left.toList()).isEmpty(); // strace's output files are removed
            }
        } finally {
            p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void parsesStracesSummary() {
        SyscallUsage u = SyscallUsage.parse("""
                syscall              calls    errors
                ---------------- --------- ---------
                wait4                    2         1
                execve                   2
                ---------------- --------- ---------
                total                    4         1
                """, true, 1.0);
        assertThat(u.calls()).containsExactly(java.util.Map.entry("wait4", 2L), java.util.Map.entry("execve", 2L));
        assertThat(u.errors()).containsExactly(java.util.Map.entry("wait4", 1L));
    }

    private static void awaitExec(long pid, String comm) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            if (comm.equals(Files.readString(Path.of("/proc", Long.toString(pid), "comm")).strip())) {
                return;
            }
            Thread.sleep(10);
        }
        throw new AssertionError(pid + " did not exec " + comm);
    }
}
