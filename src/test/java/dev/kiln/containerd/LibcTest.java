package dev.kiln.containerd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shim's system calls go through one {@code syscall(3)} downcall with Linux's numbers (Libc.Nr): each call
 * here reaches the kernel call it names, with its arguments where the kernel reads them (a wrong number or a
 * misplaced argument fails or does something else: EBADF, ENOTTY...). The subreaper's prctl, waitid and wait4 run
 * in every shim of ContainerdShimTest and SpareShimTest (a task's exit is reaped through them).
 */
class LibcTest {

    @TempDir
    Path tmp;

    /**
     * The numbers are written out per architecture; this machine's C headers are the truth (a wrong number calls
     * another system call: on an arm64 runner this compares the arm64 column, which x86-64 runs cannot exercise).
     */
    @Test
    void theSystemCallNumbersAreThisMachinesHeaders() throws Exception {
        StringBuilder c = new StringBuilder("#include <stdio.h>\n#include <sys/syscall.h>\nint main(void) {\n");
        StringBuilder expected = new StringBuilder();
        for (Libc.Nr nr : Libc.Nr.values()) {
            c.append("    printf(\"%ld\\n\", (long) SYS_").append(nr.name().toLowerCase()).append(");\n");
            expected.append(nr.number).append('\n');
        }
        Path source = Files.writeString(tmp.resolve("nr.c"), c.append("    return 0;\n}\n"));
        Path binary = tmp.resolve("nr");
        assertThat(new ProcessBuilder("cc", "-o", binary.toString(), source.toString()).inheritIO().start().waitFor())
                .isZero();
        Process run = new ProcessBuilder(binary.toString()).start();
        String printed = new String(run.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(run.waitFor()).isZero();
        assertThat(printed).isEqualTo(expected.toString());
    }

    @Test
    void mkfifoMakesAFifoWithTheMode() throws Exception {
        Path fifo = tmp.resolve("x.idle");
        Libc.mkfifo(fifo.toString(), 0600);
        BasicFileAttributes a = Files.readAttributes(fifo, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        assertThat(a.isOther()).isTrue();
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(fifo))).isEqualTo("rw-------");
        assertThatThrownBy(() -> Libc.mkfifo(fifo.toString(), 0600)).hasMessageContaining("errno 17");   // EEXIST
    }

    @Test
    void writeAndReadThroughATerminalAndResizeIt() {
        Pty pty = Pty.open();
        try {
            byte[] line = "kiln\n".getBytes(StandardCharsets.UTF_8);
            assertThat(Libc.write(pty.slaveHold(), line, line.length)).isTrue();
            byte[] buffer = new byte[64];
            int n = Libc.read(pty.master(), buffer);
            // the line discipline's output: \n as \r\n
            assertThat(new String(buffer, 0, n, StandardCharsets.UTF_8)).isEqualTo("kiln\r\n");
            Libc.resize(pty.master(), 120, 40);
        } finally {
            Libc.close(pty.slaveHold());
            Libc.close(pty.master());
        }
        assertThatThrownBy(() -> Libc.resize(pty.master(), 80, 24)).hasMessageContaining("errno 9");   // EBADF: closed
    }

    @Test
    void aListeningUnixSocketIsNotATerminal() throws Exception {
        Path path = tmp.resolve("console.sock");
        int fd = Libc.listenUnix(path.toString());
        try {
            assertThat(Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).isOther())
                    .isTrue();
            try (var client = java.nio.channels.SocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
                assertThat(client.connect(java.net.UnixDomainSocketAddress.of(path))).isTrue();   // it listens
            }
            assertThatThrownBy(() -> Libc.resize(fd, 80, 24)).hasMessageContaining("errno 25");   // ENOTTY
        } finally {
            Libc.close(fd);
        }
    }

    /**
     * runc sends a console's terminal over the console socket (SCM_RIGHTS): the shim receives it close-on-exec, so the
     * runc processes it starts next do not inherit another task's terminal.
     */
    @Test
    void aDescriptorSentOverTheConsoleSocketIsReceivedCloseOnExec() throws Exception {
        Path path = tmp.resolve("console.sock");
        Path sent = Files.writeString(tmp.resolve("sent"), "the terminal stands in");
        int listen = Libc.listenUnix(path.toString());
        Process sender = new ProcessBuilder("python3", "-c", """
                import socket, sys
                s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
                f = open(sys.argv[2]); socket.send_fds(s, [b"x"], [f.fileno()])
                """, path.toString(), sent.toString()).inheritIO().start();
        try {
            int fd = Libc.receiveFd(listen);
            try {
                assertThat(Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd))).isEqualTo(sent);
                String flags = Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd)).stream()
                        .filter(l -> l.startsWith("flags:")).findFirst().orElseThrow().split("\\s+")[1];
                assertThat(Integer.parseInt(flags, 8) & 02000000).as("O_CLOEXEC").isNotZero();
            } finally {
                Libc.close(fd);
            }
            assertThat(sender.waitFor()).isZero();
        } finally {
            Libc.close(listen);
            sender.destroyForcibly();
        }
    }

    /** More than one descriptor is not runc's console: refused, and none of them is left open in the shim. */
    @Test
    void severalDescriptorsOverTheConsoleSocketAreRefusedAndNoneKept() throws Exception {
        for (int n : new int[] {2, 12, 13}) {
            Path path = tmp.resolve("console-" + n + ".sock");
            Path sent = Files.writeString(tmp.resolve("sent-" + n), "stands in");
            int listen = Libc.listenUnix(path.toString());
            Process sender = new ProcessBuilder("python3", "-c", """
                    import socket, sys
                    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
                    fs = [open(sys.argv[2]) for _ in range(int(sys.argv[3]))]
                    socket.send_fds(s, [b"x"], [f.fileno() for f in fs])
                    """, path.toString(), sent.toString(), String.valueOf(n)).inheritIO().start();
            try {
                assertThatThrownBy(() -> Libc.receiveFd(listen)).as(n + " descriptors")
                        .hasMessageContaining("more than one file descriptor");
                assertThat(sender.waitFor()).isZero();
                assertThat(openDescriptorsOf(sent)).as(n + " descriptors: none left open").isZero();
            } finally {
                Libc.close(listen);
                sender.destroyForcibly();
            }
        }
    }

    private static long openDescriptorsOf(Path file) throws IOException {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).equals(file);
                } catch (IOException e) {
                    return false;   // closed meanwhile, or the listing's own descriptor
                }
            }).count();
        }
    }

    @Test
    void mountAnswersTheErrnoAndChdirAndSetpriorityAnswer() throws Exception {
        assertThat(Libc.mount("overlay", tmp.resolve("missing").toString(), "overlay", 0, "lowerdir=/"))
                .isEqualTo(2);   // ENOENT: its target does not exist
        Libc.chdir(Path.of("").toAbsolutePath().toString());   // where this JVM already is
        assertThatThrownBy(() -> Libc.chdir(tmp.resolve("missing").toString())).hasMessageContaining("errno 2");
        // this process group's nice as it is (the test runs as root, as the shim does)
        assertThat(Libc.niceGroup(0)).isTrue();
    }
}
