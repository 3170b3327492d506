package dev.kiln.isolation.vm;

import dev.kiln.isolation.shim.ShimBinary;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A protocol test of the VM relay's listening mode ({@code kiln-shim --relay-vm --listen}), <b>not a Firecracker
 * test</b>: this test plays the guest, connecting to {@code vm/vsock.sock_1024} as Firecracker does when kiln-init
 * connects to host port 1024, and speaks the frames of docs/guest-protocol.md byte for byte (HELLO, START,
 * STARTED, STDOUT/STDERR, SIGNAL, EXIT, BYE). The relay's "VMM" is a {@code sleep} that stands for the VM's lifetime
 * only (it ends when the test "powers off"); it serves no Firecracker API, so none is given to the relay. The relay
 * code after the first frame is the one QEMU's VMs use (VmIsolatorTest). The guest's end is GuestPeer's.
 */
class RelayListenProtocolTest {

    static final int HELLO = GuestPeer.HELLO, START = GuestPeer.START, STDOUT = GuestPeer.STDOUT,
            STDERR = GuestPeer.STDERR, EXIT = GuestPeer.EXIT, SIGNAL = GuestPeer.SIGNAL, ERROR = GuestPeer.ERROR,
            STARTED = GuestPeer.STARTED, BYE = GuestPeer.BYE;
    static final byte[] START_RECORDS = GuestPeer.START_RECORDS;

    @TempDir
    Path dir;
    GuestPeer.Relay relay;

    @AfterEach
    void stopRelay() {
        if (relay != null) relay.process().destroyForcibly();
    }

    /** The shipped relay in listening mode with the stand-in VMM (GuestPeer). */
    Process startRelay(int helloTimeout, String... extra) throws IOException {
        relay = GuestPeer.Relay.start(ShimBinary.locate(), dir, helloTimeout, true, Map.of(), extra);
        return relay.process();
    }

    SocketChannel connectAsTheGuest() throws Exception {
        return relay.connect().channel();
    }

    static void send(OutputStream out, int type, int stream, byte[] payload) throws IOException {
        GuestPeer.send(out, type, stream, payload);
    }

    static void send(OutputStream out, int type, int stream, String text) throws IOException {
        GuestPeer.send(out, type, stream, text);
    }

    static GuestPeer.Frame read(DataInputStream in) throws IOException {
        return GuestPeer.read(in);
    }

    /** The host's BYE, then the "VM" powers off and the relay ends. */
    void endConversation(GuestPeer.Guest guest) throws Exception {
        assertThat(read(guest.in()).type()).isEqualTo(BYE);
        powerOff();
        assertThat(relay.process().waitFor(20, TimeUnit.SECONDS)).isTrue();
    }

    void powerOff() throws IOException {
        relay.powerOff();
    }

    String file(String name) throws IOException {
        return relay.file(name);
    }

    @Test
    void theGuestConnectsToTheListeningRelayAndTheConversationIsTheQemuOne() throws Exception {
        Process p = startRelay(30);
        try (SocketChannel ch = connectAsTheGuest()) {
            DataInputStream in = new DataInputStream(Channels.newInputStream(ch));
            OutputStream out = Channels.newOutputStream(ch);

            GuestPeer.Frame hello = read(in); // the host speaks first
            assertThat(hello.type()).isEqualTo(HELLO);
            assertThat(hello.stream()).isZero();
            assertThat(hello.text()).isEqualTo("version=1\0");
            assertThat(dir.resolve("vm").resolve(FirecrackerCommand.controlSocket()))
                    .as("one connection is the channel: the socket goes once it is accepted").doesNotExist();

            send(out, HELLO, 0, "version=1\0uptime_ms=123\0");
            GuestPeer.Frame start = read(in);
            assertThat(start.type()).isEqualTo(START);
            // the spec's records, then the relay's own of this start: 64 random bytes and the host's clock
            byte[] payload = start.payload();
            assertThat(java.util.Arrays.copyOf(payload, START_RECORDS.length)).isEqualTo(START_RECORDS);
            String fresh = new String(payload, START_RECORDS.length, payload.length - START_RECORDS.length,
                    java.nio.charset.StandardCharsets.US_ASCII);
            assertThat(fresh).matches("seed=[0-9a-f]{128}\0time=\\d+\\.\\d{9}\0");
            double hostTime = Double.parseDouble(fresh.substring(fresh.indexOf("time=") + 5, fresh.length() - 1));
            assertThat(hostTime).isCloseTo(System.currentTimeMillis() / 1000.0,
                    org.assertj.core.data.Offset.offset(5.0));

            send(out, STARTED, 0, "42");
            send(out, STDOUT, 0, "hi\n");
            send(out, STDERR, 0, "err\n");
            send(out, EXIT, 0, "7 0");
            GuestPeer.Frame bye = read(in);
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
        try (GuestPeer.Guest guest = relay.converse()) {
            send(guest.out(), STARTED, 0, "42");

            new ProcessBuilder("kill", "-TERM", Long.toString(p.pid())).start().waitFor(10, TimeUnit.SECONDS);
            GuestPeer.Frame signal = read(guest.in());
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
        try (GuestPeer.Guest guest = relay.converse()) {
            send(guest.out(), ERROR, 0, "mounting /dev/vda (erofs) on /mnt/image: No such device");
            endConversation(guest);
        }
        assertThat(p.exitValue()).isEqualTo(125);
        assertThat(file("stderr").lines()).containsExactly("kiln: the VM could not start the sandbox: guest: mounting "
                + "/dev/vda (erofs) on /mnt/image: No such device");
    }

    /**
     * The guest's words reach the sandbox's log and kiln's shim.log as one line, control characters and escape
     * sequences escaped and marked as the guest's: a guest cannot forge a line of kiln's (issue 11, item 6).
     */
    @Test
    void aGuestErrorCannotForgeALineOfKilns() throws Exception {
        Process p = startRelay(30);
        try (GuestPeer.Guest guest = relay.converse()) {
            send(guest.out(), ERROR, 0, "disk gone\nkiln: sandbox ok\r\u001b[2K\u001b[32mgreen\\x41\u0000end\u00e9");
            endConversation(guest);
        }
        assertThat(p.exitValue()).isEqualTo(125);
        String line = "kiln: the VM could not start the sandbox: guest: disk gone\\x0akiln: sandbox ok\\x0d\\x1b[2K"
                + "\\x1b[32mgreen\\\\x41\\x00end\\xc3\\xa9";
        assertThat(file("stderr").lines()).containsExactly(line);
        assertThat(file("vm/shim.log").lines()).as("kiln's own log of the relay").singleElement()
                .satisfies(l -> assertThat(l).endsWith(" " + line));
    }

    /** kilnd quotes guest text (top's ps output in an error) as the relay does: one line, no terminal escapes. */
    @Test
    void kilndQuotesGuestTextAsTheRelayDoes() {
        assertThat(VmIsolator.guestText("ps: x\nkiln: forged\u001b[2J\\n\u009b1m caf\u00e9"))
                .isEqualTo("ps: x\\x0akiln: forged\\x1b[2J\\\\n\\x9b1m caf\u00e9");
    }

    /** The guest's EXIT is an exit status only: the relay never raises a signal the guest names (item 4). */
    /**
     * The guest's BYE after the host's (docs/guest-protocol.md: it has synced its disks) ends the VMM at once: the relay
     * kills the stand-in "VMM" (a {@code sleep 600} that never powers off by itself) and exits with the workload's code,
     * instead of waiting for a power-off (at most 10 s, then a kill).
     */
    @Test
    void theGuestsByeEndsTheVmmAtOnce() throws Exception {
        Process p = startRelay(30);
        try (GuestPeer.Guest guest = relay.converse()) {
            send(guest.out(), EXIT, 0, "3 0");
            assertThat(read(guest.in()).type()).isEqualTo(BYE);
            send(guest.out(), BYE, 0, "");
            // well inside the relay's 10 s power-off deadline, after which it would kill the VMM anyway
            assertThat(p.waitFor(8, TimeUnit.SECONDS)).as("the relay ends on the guest's BYE, no power-off").isTrue();
        }
        assertThat(p.exitValue()).as(file("stderr")).isEqualTo(3);
        assertThat(file("stderr")).isEmpty();
        assertThat(file("vm/timings.json")).doesNotContain("\"stoppedMs\":-1");
    }

    /**
     * A volatile VM's (START's {@code volatile=1}: a {@code --rm} sandbox, its disk deleted with it) EXIT ends the VMM
     * at once: the relay does not wait for the guest's BYE (a guest that never answers would otherwise be given the
     * 10 s power-off deadline), and the workload's output and code are whole.
     */
    @Test
    void aVolatileVmsExitEndsTheVmmWithoutTheGuestsBye() throws Exception {
        byte[] spec = (new String(START_RECORDS, java.nio.charset.StandardCharsets.UTF_8) + "volatile=1\0")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8);
        relay = GuestPeer.Relay.start(ShimBinary.locate(), dir, 30, true, Map.of(), spec);
        Process p = relay.process();
        try (GuestPeer.Guest guest = relay.converse()) {
            send(guest.out(), STDOUT, 0, "all of it\n");
            send(guest.out(), EXIT, 0, "4 0");
            // no BYE from this guest, and the stand-in VMM never powers off by itself
            assertThat(p.waitFor(5, TimeUnit.SECONDS)).as("the relay ends on a volatile VM's EXIT").isTrue();
        }
        assertThat(p.exitValue()).as(file("stderr")).isEqualTo(4);
        assertThat(file("stdout")).isEqualTo("all of it\n");
        assertThat(file("vm/timings.json")).doesNotContain("\"stoppedMs\":-1");
    }

    /** A BYE from the guest is only ever the answer to the host's: before the exit it breaks the protocol. */
    @Test
    void aGuestByeBeforeItsExitBreaksTheProtocol() throws Exception {
        Process p = startRelay(30);
        try (GuestPeer.Guest guest = relay.converse()) {
            send(guest.out(), BYE, 0, "");
            assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(p.exitValue()).isEqualTo(125);
        assertThat(file("stderr")).contains("kiln: the guest broke the protocol (a malformed frame); stopping the VM");
    }

    @Test
    void aGuestsExitSignalIsAnExitStatusOnly() throws Exception {
        Process p = startRelay(30);
        try (GuestPeer.Guest guest = relay.converse()) {
            send(guest.out(), EXIT, 0, "148 20"); // SIGTSTP: raised on itself, it stopped the relay for good
            endConversation(guest);
        }
        assertThat(p.exitValue()).isEqualTo(148);
        assertThat(file("stderr")).isEmpty();
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
        Files.createDirectories(vm.resolve(dev.kiln.isolation.vm.jail.VmmJail.RUN)); // where its sockets are, as launch makes it
        Files.write(vm.resolve("start.spec"), START_RECORDS);
        Files.write(vm.resolve(FirecrackerCommand.REQUESTS_FILE), FirecrackerApi.script(List.of(
                FirecrackerApi.machineConfig(1, 128), FirecrackerApi.action(FirecrackerApi.Action.InstanceStart))));
        Process p = new ProcessBuilder(ShimBinary.locate().toString(), "--relay-vm", "--dir", vm.toString(), "--spec",
                vm.resolve("start.spec").toString(), "--hello-timeout", "30", "--listen",
                FirecrackerCommand.controlSocket(), "--api-sock", FirecrackerCommand.API_SOCKET, "--api-requests",
                FirecrackerCommand.REQUESTS_FILE, "--console-stdout", "--",
                "sh", "-c", "echo console line; echo 'no /dev/kvm for this VMM' >&2; exit 1")
                .redirectOutput(dir.resolve("stdout").toFile()).redirectError(dir.resolve("stderr").toFile()).start();
        relay = new GuestPeer.Relay(dir, p);
        long t0 = System.nanoTime();
        assertThat(p.waitFor(20, TimeUnit.SECONDS)).isTrue();
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).as("no wait for the socket's 10 s bound")
                .isLessThan(Duration.ofSeconds(5));
        assertThat(p.exitValue()).isEqualTo(125);
        assertThat(file("stderr").lines()).containsExactly(
                "kiln: the VMM exited before it was configured: no /dev/kvm for this VMM");
        assertThat(file("vm/boot.log")).as("--console-stdout: the VMM's stdout is the console").isEqualTo("console line\n");
        assertThat(file("vm/vmm.log")).isEqualTo("no /dev/kvm for this VMM\n");
    }
}
