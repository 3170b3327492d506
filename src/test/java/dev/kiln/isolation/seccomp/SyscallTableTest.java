package dev.kiln.isolation.seccomp;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class SyscallTableTest {

    static final Path HEADER = Path.of("/usr/include/x86_64-linux-gnu/asm/unistd_64.h");

    @Test
    void knowsTheNumbersOfTheX86_64Abi() {
        SyscallTable t = SyscallTable.x86_64();
        assertThat(t.name(0)).isEqualTo("read");
        assertThat(t.name(59)).isEqualTo("execve");
        assertThat(t.number("seccomp")).contains(317);
        assertThat(t.number("no_such_call")).isEmpty();
        assertThat(t.name(400)).isEqualTo("syscall_400"); // the gap between 334 and 424 (x32 and 32-bit time)
    }

    /** The resource is the header, as its first lines say it was generated. */
    @Test
    void equalsTheInstalledHeader() throws Exception {
        Assumptions.assumeTrue(Files.isRegularFile(HEADER), HEADER + " is missing (apt-get install linux-libc-dev)");
        Map<Integer, String> fromHeader = new TreeMap<>();
        for (String line : Files.readAllLines(HEADER)) {
            String[] f = line.split("\\s+");
            if (f.length == 3 && f[0].equals("#define") && f[1].startsWith("__NR_")) {
                fromHeader.put(Integer.parseInt(f[2]), f[1].substring(5));
            }
        }
        assertThat(SyscallTable.x86_64().all()).isEqualTo(fromHeader);
    }
}
