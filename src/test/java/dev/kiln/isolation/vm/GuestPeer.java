package dev.kiln.isolation.vm;

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
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Plays the guest for the VM relay ({@code kiln-shim --relay-vm}) without a VM: the relay runs in its listening mode
 * ({@code --listen}, as for Firecracker), the peer connects to {@code vm/vsock.sock_1024} as Firecracker does when
 * kiln-init connects to host port 1024, and speaks the frames of docs/guest-protocol.md byte for byte. The relay's
 * "VMM" is a {@code sleep} that stands for the VM's lifetime only: it ends when the peer "powers off" (kills it); it
 * serves no Firecracker API. The relay's code after the first frame is the one QEMU's VMs use. Used by
 * RelayListenProtocolTest (the conversation) and RelayFuzzTest (a hostile guest).
 */
final class GuestPeer {

    private GuestPeer() {
    }

    static final int HELLO = 1, START = 2, EXEC = 3, STDIN = 4, STDIN_CLOSE = 5, STDOUT = 6, STDERR = 7, EXIT = 8,
            SIGNAL = 9, RESIZE = 10, ERROR = 11, STARTED = 12, BYE = 13;
    static final byte[] START_RECORDS = "arg=sh\0arg=-c\0arg=echo hi\0env=PATH=/bin\0hostname=box\0"
            .getBytes(StandardCharsets.UTF_8);
    /** The stand-in VMM: lives until the "VM" powers off ({@link Relay#powerOff}), or its relay dies (PDEATHSIG). */
    static final List<String> VMM = List.of("sleep", "600");

    record Frame(int type, int stream, byte[] payload) {
        String text() {
            return new String(payload, StandardCharsets.UTF_8);
        }
    }

    /**
     * A relay under test in {@code dir/vm}, its stderr in {@code dir/stderr} and its stdout in {@code dir/stdout}
     * (or a pipe the test reads, or not, itself).
     */
    record Relay(Path dir, Process process) {

        /**
         * Starts {@code binary --relay-vm --listen ...} with the stand-in VMM.
         *
         * @param stdoutToFile false: stdout is a pipe ({@link Process#getInputStream()}) that nobody reads unless the
         *                     test does
         * @param env          added to the relay's environment
         * @param extra        more relay options, before {@code --}
         */
        static Relay start(Path binary, Path dir, int helloTimeout, boolean stdoutToFile, Map<String, String> env,
                           String... extra) throws IOException {
            return start(binary, dir, helloTimeout, stdoutToFile, env, START_RECORDS, extra);
        }

        /** As above, with {@code spec} as the START records kilnd would have written. */
        static Relay start(Path binary, Path dir, int helloTimeout, boolean stdoutToFile, Map<String, String> env,
                           byte[] spec, String... extra) throws IOException {
            Path vm = Files.createDirectories(dir.resolve("vm"));
            Files.createDirectories(vm.resolve(dev.kiln.isolation.vm.jail.VmmJail.RUN)); // where its sockets are, as launch makes it
            Files.write(vm.resolve("start.spec"), spec);
            List<String> cmd = new ArrayList<>(List.of(binary.toString(), "--relay-vm", "--dir", vm.toString(),
                    "--spec", vm.resolve("start.spec").toString(), "--hello-timeout", Integer.toString(helloTimeout),
                    "--listen", FirecrackerCommand.controlSocket()));
            cmd.addAll(List.of(extra));
            cmd.add("--");
            cmd.addAll(VMM);
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(dir.resolve("stderr").toFile());
            if (stdoutToFile) {
                pb.redirectOutput(dir.resolve("stdout").toFile());
            }
            pb.environment().putAll(env);
            return new Relay(dir, pb.start());
        }

        Path vm() {
            return dir.resolve("vm");
        }

        /** Connects as Firecracker does for the guest: to {@code uds_path + "_" + port}, once the relay listens. */
        Guest connect() throws Exception {
            Path sock = vm().resolve(FirecrackerCommand.controlSocket());
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (true) {
                try {
                    SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                    ch.connect(UnixDomainSocketAddress.of(sock));
                    return new Guest(ch, new DataInputStream(Channels.newInputStream(ch)), Channels.newOutputStream(ch));
                } catch (IOException e) {
                    if (System.nanoTime() > deadline || !process.isAlive()) throw e;
                    Thread.sleep(10);
                }
            }
        }

        /** Connects as the guest and plays the opening (frame types only): the host's HELLO, the guest's, START. */
        Guest converse() throws Exception {
            Guest guest = connect();
            assertThat(read(guest.in()).type()).isEqualTo(HELLO);
            send(guest.out(), HELLO, 0, "version=1\0uptime_ms=5\0");
            assertThat(read(guest.in()).type()).isEqualTo(START);
            return guest;
        }

        /** The "VM" powers off: the stand-in VMM (the relay's child, vm/vmm.pid) ends. */
        void powerOff() throws IOException {
            Path pidFile = vm().resolve("vmm.pid");
            if (!Files.exists(pidFile)) return; // the relay never started it
            ProcessHandle.of(Long.parseLong(Files.readString(pidFile).strip()))
                    .filter(vmm -> vmm.parent().map(ProcessHandle::pid).orElse(-1L) == process.pid())
                    .ifPresent(ProcessHandle::destroy);
        }

        String file(String name) throws IOException {
            return Files.readString(dir.resolve(name));
        }
    }

    /** The guest's end of the relay's channel. */
    record Guest(SocketChannel channel, DataInputStream in, OutputStream out) implements AutoCloseable {
        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    /** type, flags 0, stream (u16 BE), length (u32 BE), payload: docs/guest-protocol.md "Frames". */
    static byte[] frame(int type, int stream, byte[] payload) {
        return ByteBuffer.allocate(8 + payload.length).put((byte) type).put((byte) 0).putShort((short) stream)
                .putInt(payload.length).put(payload).array();
    }

    static void send(OutputStream out, int type, int stream, byte[] payload) throws IOException {
        out.write(frame(type, stream, payload));
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
}
