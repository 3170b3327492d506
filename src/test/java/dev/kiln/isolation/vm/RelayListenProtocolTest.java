package dev.kiln.isolation.vm;

import dev.kiln.isolation.shim.ShimBinary;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A protocol test of the VM relay's listening mode ({@code kiln-shim --relay-vm --listen}), <b>not a Firecracker
 * test</b>: this test plays the guest, connecting to {@code vm/vsock.sock_1024} as Firecracker does when kiln-init
 * connects to host port 1024, and speaks the frames of docs/guest-protocol.md byte for byte (HELLO, START,
 * STARTED, STDOUT/STDERR, SIGNAL, EXIT, BYE). The relay's "VMM" is a shell loop that stands for the VM's lifetime
 * only (it ends when the test "powers off"); it serves no Firecracker API, so none is given to the relay. The relay
 * code after the first frame is the one QEMU's VMs use (VmIsolatorTest).
 */
class RelayListenProtocolTest {

    static final int HELLO = 1, START = 2, STDOUT = 6, STDERR = 7, EXIT = 8, SIGNAL = 9, ERROR = 11, STARTED = 12,
            BYE = 13;
    static final byte[] START_RECORDS = "arg=sh\0arg=-c\0arg=echo hi\0env=PATH=/bin\0hostname=box\0"
            .getBytes(StandardCharsets.UTF_8);

    @TempDir
    Path dir;
    Process relay;

    record Frame(int type, int stream, byte[] payload) {
        String text() {
            return new String(payload, StandardCharsets.UTF_8);
        }
    }

    @AfterEach
    void stopRelay() {
        if (relay != null) relay.destroyForcibly();
    }

    /** The relay in listening mode with a stand-in VMM that lives until the file {@code poweroff} appears. */
    Process startRelay(int helloTimeout, String... extra) throws IOException {
        Path vm = Files.createDirectories(dir.resolve("vm"));
        Files.write(vm.resolve("start.spec"), START_RECORDS);
        List<String> cmd = new ArrayList<>(List.of(ShimBinary.locate().toString(), "--relay-vm", "--dir",
                vm.toString(), "--spec", vm.resolve("start.spec").toString(), "--hello-timeout",
                Integer.toString(helloTimeout), "--listen", FirecrackerCommand.controlSocket()));
        cmd.addAll(List.of(extra));
        cmd.addAll(List.of("--", "sh", "-c", "while [ ! -e poweroff ]; do sleep 0.05; done"));
        relay = new ProcessBuilder(cmd).redirectOutput(dir.resolve("stdout").toFile())
                .redirectError(dir.resolve("stderr").toFile()).start();
        return relay;
    }

    /** Connects as Firecracker does for the guest: to {@code uds_path + "_" + port}, once the relay listens. */
    SocketChannel connectAsTheGuest() throws Exception {
        Path sock = dir.resolve("vm").resolve(FirecrackerCommand.controlSocket());
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (true) {
            try {
                SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                ch.connect(UnixDomainSocketAddress.of(sock));
                return ch;
            } catch (IOException e) {
                if (System.nanoTime() > deadline) throw e;
                Thread.sleep(10);
            }
        }
    }

    /** type, flags 0, stream (u16 BE), length (u32 BE), payload: docs/guest-protocol.md "Frames". */
    static void send(OutputStream out, int type, int stream, byte[] payload) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + payload.length);
        b.put((byte) type).put((byte) 0).putShort((short) stream).putInt(payload.length).put(payload);
        out.write(b.array());
        out.flush();
    }

    static void send(OutputStream out, int type, int stream, String text) throws IOException {
        send(out, type, stream, text.getBytes(StandardCharsets.UTF_8));
    }

    static Frame read(DataInputStream in) throws IOException {
        int type = in.readUnsignedByte();
        assertThat(in.readUnsignedByte()).as("flags").isZero();
        int stream = in.readUnsignedShort();
        int length = in.readInt();
        assertThat(length).isBetween(0, 65536);
        return new Frame(type, stream, in.readNBytes(length));
    }

    /** The guest's end of the relay's channel, as the test plays it. */
    record Guest(SocketChannel channel, DataInputStream in, OutputStream out) implements AutoCloseable {
        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    /** Connects as the guest and plays the opening (frame types only): the host's HELLO, the guest's, START. */
    Guest startConversation() throws Exception {
        SocketChannel ch = connectAsTheGuest();
        Guest guest = new Guest(ch, new DataInputStream(Channels.newInputStream(ch)), Channels.newOutputStream(ch));
        assertThat(read(guest.in()).type()).isEqualTo(HELLO);
        send(guest.out(), HELLO, 0, "version=1\0uptime_ms=5\0");
        assertThat(read(guest.in()).type()).isEqualTo(START);
        return guest;
    }

    /** The host's BYE, then the "VM" powers off and the relay ({@link #startRelay}) ends. */
    void endConversation(Guest guest) throws Exception {
        assertThat(read(guest.in()).type()).isEqualTo(BYE);
        powerOff();
        assertThat(relay.waitFor(20, TimeUnit.SECONDS)).isTrue();
    }

    void powerOff() throws IOException {
        Files.createFile(dir.resolve("vm/poweroff"));
    }

    String file(String name) throws IOException {
        return Files.readString(dir.resolve(name));
    }

    @Test
    void theGuestConnectsToTheListeningRelayAndTheConversationIsTheQemuOne() throws Exception {
        Process p = startRelay(30);
        try (SocketChannel ch = connectAsTheGuest()) {
            DataInputStream in = new DataInputStream(Channels.newInputStream(ch));
            OutputStream out = Channels.newOutputStream(ch);

            Frame hello = read(in); // the host speaks first
            assertThat(hello.type()).isEqualTo(HELLO);
            assertThat(hello.stream()).isZero();
            assertThat(hello.text()).isEqualTo("version=1\0");
            assertThat(dir.resolve("vm").resolve(FirecrackerCommand.controlSocket()))
                    .as("one connection is the channel: the socket goes once it is accepted").doesNotExist();

            send(out, HELLO, 0, "version=1\0uptime_ms=123\0");
            Frame start = read(in);
            assertThat(start.type()).isEqualTo(START);
            assertThat(start.payload()).isEqualTo(START_RECORDS);

            send(out, STARTED, 0, "42");
            send(out, STDOUT, 0, "hi\n");
            send(out, STDERR, 0, "err\n");
            send(out, EXIT, 0, "7 0");
            Frame bye = read(in);
            assertThat(bye.type()).isEqualTo(BYE);
            assertThat(bye.payload()).isEmpty();
            powerOff();
            assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(p.exitValue()).as(file("stderr")).isEqualTo(7);
        assertThat(file("stdout")).isEqualTo("hi\n");
        assertThat(file("stderr")).isEqualTo("err\n");
        String timings = file("vm/timings.json");
        assertThat(timings).contains("\"guestUptimeAtHelloMs\":123").doesNotContain("\"vmmSocketMs\":-1")
                .doesNotContain("\"helloMs\":-1").doesNotContain("\"exitMs\":-1");
    }

    /** A graceful stop is a signal the relay passes to the guest's main process, which then exits by it. */
    @Test
    void aSignalToTheRelayReachesTheGuestAsASignalFrame() throws Exception {
        Process p = startRelay(30);
        try (Guest guest = startConversation()) {
            send(guest.out(), STARTED, 0, "42");

            new ProcessBuilder("kill", "-TERM", Long.toString(p.pid())).start().waitFor(10, TimeUnit.SECONDS);
            Frame signal = read(guest.in());
            assertThat(signal.type()).isEqualTo(SIGNAL);
            assertThat(signal.stream()).isZero();
            assertThat(signal.text()).isEqualTo("15");

            send(guest.out(), EXIT, 0, "143 15");
            endConversation(guest);
        }
        assertThat(p.exitValue()).as("the relay ends as the guest's process did: by SIGTERM").isEqualTo(143);
    }

    @Test
    void aGuestErrorEndsTheRelayWithItsLine() throws Exception {
        Process p = startRelay(30);
        try (Guest guest = startConversation()) {
            send(guest.out(), ERROR, 0, "mounting /dev/vda (erofs) on /mnt/image: No such device");
            endConversation(guest);
        }
        assertThat(p.exitValue()).isEqualTo(125);
        assertThat(file("stderr").lines()).containsExactly("kiln: the VM could not start the sandbox: mounting "
                + "/dev/vda (erofs) on /mnt/image: No such device");
    }

    @Test
    void aGuestThatNeverConnectsIsGivenUpOnAtTheHelloTimeout() throws Exception {
        Process p = startRelay(1);
        assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).isEqualTo(125);
        assertThat(file("stderr")).startsWith("kiln: the VM did not answer within 1 s");
        assertThat(dir.resolve("vm").resolve(FirecrackerCommand.controlSocket())).as("removed at the end").doesNotExist();
    }

    /**
     * The boot-sequence path (--api-sock/--api-requests) when the VMM dies before it opens its API socket (as a
     * firecracker without KVM does): one line quoting the VMM's last words, exit 125, nothing waits for the
     * bound. No API server plays Firecracker here; the requests are never answered by anyone.
     */
    @Test
    void aVmmThatExitsBeforeItIsConfiguredEndsTheStartWithItsLastLine() throws Exception {
        Path vm = Files.createDirectories(dir.resolve("vm"));
        Files.write(vm.resolve("start.spec"), START_RECORDS);
        Files.write(vm.resolve(FirecrackerCommand.REQUESTS_FILE), FirecrackerApi.script(List.of(
                FirecrackerApi.machineConfig(1, 128), FirecrackerApi.action(FirecrackerApi.Action.InstanceStart))));
        relay = new ProcessBuilder(ShimBinary.locate().toString(), "--relay-vm", "--dir", vm.toString(), "--spec",
                vm.resolve("start.spec").toString(), "--hello-timeout", "30", "--listen",
                FirecrackerCommand.controlSocket(), "--api-sock", FirecrackerCommand.API_SOCKET, "--api-requests",
                FirecrackerCommand.REQUESTS_FILE, "--console-stdout", "--",
                "sh", "-c", "echo console line; echo 'no /dev/kvm for this VMM' >&2; exit 1")
                .redirectOutput(dir.resolve("stdout").toFile()).redirectError(dir.resolve("stderr").toFile()).start();
        long t0 = System.nanoTime();
        assertThat(relay.waitFor(20, TimeUnit.SECONDS)).isTrue();
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).as("no wait for the socket's 10 s bound")
                .isLessThan(Duration.ofSeconds(5));
        assertThat(relay.exitValue()).isEqualTo(125);
        assertThat(file("stderr").lines()).containsExactly(
                "kiln: the VMM exited before it was configured: no /dev/kvm for this VMM");
        assertThat(file("vm/boot.log")).as("--console-stdout: the VMM's stdout is the console").isEqualTo("console line\n");
        assertThat(file("vm/vmm.log")).isEqualTo("no /dev/kvm for this VMM\n");
    }
}
