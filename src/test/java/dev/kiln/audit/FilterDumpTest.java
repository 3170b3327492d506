package dev.kiln.audit;

import static dev.kiln.audit.SeccompFilter.*;
import static dev.kiln.audit.SeccompFilter.Instruction.jump;
import static dev.kiln.audit.SeccompFilter.Instruction.stmt;
import static org.assertj.core.api.Assertions.assertThat;

import dev.kiln.audit.SyscallSurface.Kind;
import dev.kiln.isolation.seccomp.SyscallTable;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link FilterDump} and {@link Privileges} on a real process the test starts under filters it knows byte for
 * byte ({@link SeccompedProcess}): what the kernel hands back must be exactly what was installed.
 */
class FilterDumpTest {

    static final int UNAME = 63, PERSONALITY = 135, MOUNT = 165;

    /** uname fails with EPERM; personality only as a query (0xffffffff); everything else runs. */
    static final SeccompFilter FIRST = SeccompFilter.of(
            stmt(LD | W | ABS, 4),
            jump(JMP | JEQ | K, BpfEvaluator.AUDIT_ARCH_X86_64, 0, 7),
            stmt(LD | W | ABS, 0),
            jump(JMP | JEQ | K, UNAME, 0, 1),
            stmt(RET | K, SeccompAction.ERRNO | 1),
            jump(JMP | JEQ | K, PERSONALITY, 0, 3),
            stmt(LD | W | ABS, 16),
            jump(JMP | JEQ | K, 0xffffffff, 1, 0),
            stmt(RET | K, SeccompAction.ERRNO | 1),
            stmt(RET | K, SeccompAction.ALLOW));
    /** stacked on top: mount kills the process. */
    static final SeccompFilter SECOND = SeccompFilter.of(
            stmt(LD | W | ABS, 0),
            jump(JMP | JEQ | K, MOUNT, 0, 1),
            stmt(RET | K, SeccompAction.KILL_PROCESS),
            stmt(RET | K, SeccompAction.ALLOW));

    @Test
    void readsBackExactlyTheStackedFiltersOfALiveProcess() throws Exception {
        Seccomped p = start(FIRST, SECOND);
        try {
            List<SeccompFilter> dumped = FilterDump.of(p.pid());
            assertThat(dumped).containsExactly(FIRST, SECOND); // in the order they were installed
            assertThat(dumped.get(0).bytes()).isEqualTo(FIRST.bytes());

            ProcessFilters all = ProcessFilters.of(p.pid(), BpfEvaluatorTest.EVALUATOR, SyscallTable.x86_64());
            assertThat(all.description()).startsWith("2 filters (10+4 instructions) on ").endsWith(" threads");
            SyscallSurface s = all.surface();
            assertThat(s.names(Kind.DENIED)).containsExactlyInAnyOrder("uname", "mount");
            assertThat(s.names(Kind.ARGUMENT_CHECKED)).containsExactly("personality");
            assertThat(s.count(Kind.ALLOWED)).isEqualTo(SyscallTable.x86_64().size() - 3);
            assertThat(s.verdict("mount").outcomes()).containsExactly(new SeccompAction(SeccompAction.KILL_PROCESS));

            Privileges priv = Privileges.of(p.pid());
            assertThat(priv.noNewPrivs()).isTrue();
            assertThat(priv.seccomp()).isEqualTo(2);
            assertThat(priv.seccompFilters()).isEqualTo(2);
            assertThat(priv.hostRoot()).isTrue();
            assertThat(priv.ownNamespaces()).isEmpty();
            // the process runs on after being read
            assertThat(p.alive()).isTrue();
        } finally {
            p.kill();
        }
    }

    @Test
    void aProcessWithoutFiltersHasNone() throws Exception {
        Seccomped p = start();
        try {
            ProcessFilters all = ProcessFilters.of(p.pid(), BpfEvaluatorTest.EVALUATOR, SyscallTable.x86_64());
            assertThat(all.description()).startsWith("no filter on ");
            assertThat(all.surface().count(Kind.ALLOWED)).isEqualTo(SyscallTable.x86_64().size());
            assertThat(Privileges.of(p.pid()).seccomp()).isZero();
        } finally {
            p.kill();
        }
    }

    /** A process of {@link #start}: its pid, and the pipe its output comes through. */
    record Seccomped(long pid, Process launcher) {
        boolean alive() {
            return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
        }

        void kill() throws InterruptedException {
            ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            launcher.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    /**
     * {@link SeccompedProcess} in its own JVM, a child of setsid, not of this JVM ({@code setsid --fork --wait}:
     * setsid stays, so its output pipe does too): the JDK's process
     * reaper waits on its own children and would take the ptrace stop notifications that {@link FilterDump} waits
     * for (kilnd never traces its own children either). Returns once the filters are installed.
     */
    static Seccomped start(SeccompFilter... filters) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("setsid", "--fork", "--wait",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Xshare:auto", "-XX:+UseSerialGC", "-cp",
                System.getProperty("java.class.path"), SeccompedProcess.class.getName()));
        for (SeccompFilter f : filters) {
            cmd.add(HexFormat.of().formatHex(f.bytes()));
        }
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream()));
        String line = out.readLine();
        assertThat(line).as("the seccomped process's first line").startsWith("ready ");
        return new Seccomped(Long.parseLong(line.substring(6)), p);
    }
}
