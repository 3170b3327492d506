package dev.kiln.isolation.vm;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import static dev.kiln.isolation.vm.GuestPeer.BYE;
import static dev.kiln.isolation.vm.GuestPeer.ERROR;
import static dev.kiln.isolation.vm.GuestPeer.EXEC;
import static dev.kiln.isolation.vm.GuestPeer.EXIT;
import static dev.kiln.isolation.vm.GuestPeer.HELLO;
import static dev.kiln.isolation.vm.GuestPeer.START;
import static dev.kiln.isolation.vm.GuestPeer.STARTED;
import static dev.kiln.isolation.vm.GuestPeer.STDERR;
import static dev.kiln.isolation.vm.GuestPeer.STDOUT;
import static dev.kiln.isolation.vm.GuestPeer.frame;
import static dev.kiln.isolation.vm.GuestPeer.read;
import static dev.kiln.isolation.vm.GuestPeer.send;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * The VM relay's guest-facing side against a hostile guest (issue 11, items 3-5): the relay built with AddressSanitizer
 * and UndefinedBehaviorSanitizer (native/Makefile {@code asan}, a test build, never shipped), with GuestPeer
 * playing the guest: random frames, mutated valid conversations, and a case for each hole the review found. Every
 * relay, in every case, must end within {@link #END_DEADLINE} once the guest is done (or on its own where the
 * protocol says it ends the VM), with no sanitizer report, its resident memory below {@link #RSS_LIMIT}, and never
 * in the stopped state (a guest's number must never become a signal on a host process).
 *
 * <p>Random and mutated cases draw from one seeded generator; the seed is printed ({@code -Dkiln.fuzz.seed=N} replays
 * a run), and so is the number of cases that ran. The count is bounded so the class runs in CI in well under a
 * minute.
 */
@Timeout(90) // per test: a relay that hangs (as the old one did) fails its case, not the build
class RelayFuzzTest {

    static final int RANDOM_CASES = 50, MUTATED_CASES = 50;
    /** Every queue is bounded near 1 MiB (G_HIGH); the ASan build itself starts at ~6 MB. */
    static final long RSS_LIMIT = 64L << 20;
    static final Duration END_DEADLINE = Duration.ofSeconds(10);
    /** The relay gives the VMM this long to power off after the guest's EXIT or ERROR (G_POWEROFF_MS), then kills it. */
    static final Duration STOP_DEADLINE = Duration.ofSeconds(10);
    /** Exit codes of a sanitizer's report; a guest can choose any exit code too, so the reports themselves are checked. */
    static final int ASAN_EXIT = 86, UBSAN_EXIT = 87;

    static final AtomicInteger CASES = new AtomicInteger();
    static long seed;

    @TempDir
    Path tmp;

    @BeforeAll
    static void seed() {
        seed = Long.getLong("kiln.fuzz.seed", System.nanoTime());
        System.out.println("RelayFuzzTest: seed " + seed + " (-Dkiln.fuzz.seed=" + seed + " replays it)");
    }

    @AfterAll
    static void count() {
        System.out.println("RelayFuzzTest: " + CASES.get() + " cases ran (" + RANDOM_CASES + " random, "
                + MUTATED_CASES + " mutated, the rest targeted; seed " + seed + ")");
    }

    static Path asanShim() {
        Path p = Path.of(System.getProperty("kiln.shim.asan", "target/native/asan/kiln-shim"));
        assertThat(p).as("the relay's ASan build (make -C native asan OUT=target/native)").isExecutable();
        return p;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Targeted cases: one per hole of issue 11

    /** Item 3: a negative exit code is refused at once (it left the relay queueing a BYE per frame, without bound). */
    @Test
    void aNegativeExitCodeIsAProtocolViolation() throws Exception {
        try (Run run = new Run("negative-exit", true)) {
            GuestPeer.Guest guest = run.converse();
            byte[] exit = frame(EXIT, 0, bytes("-1 0"));
            long sent = run.flood(guest, exit, 256L << 20, Duration.ofSeconds(5));
            assertThat(run.awaitEnd()).isEqualTo(125);
            assertThat(run.stderr()).contains("kiln: the guest broke the protocol (a malformed frame); stopping the VM");
            assertThat(sent).as("the relay stopped reading after the first frame").isLessThan(256L << 20);
        }
    }

    /**
     * Item 4: exit statuses that name the job-control stop signals (SIGTSTP 20, SIGTTIN 21, SIGTTOU 22) end the relay
     * with that status; it once raised the signal on itself and stayed stopped, its VM "up" after power-off.
     */
    @Test
    void exitStatusesOfStopSignalsAreStatusesOnly() throws Exception {
        for (String exit : List.of("148 20", "149 21", "150 22", "20 0", "21 0", "22 0")) {
            try (Run run = new Run("exit-" + exit.replace(' ', '-'), true)) {
                GuestPeer.Guest guest = run.converse();
                send(guest.out(), EXIT, 0, exit);
                assertThat(run.next(guest).type()).isEqualTo(BYE);
                int code = run.end(guest);
                assertThat(code).as(exit).isEqualTo(Integer.parseInt(exit.split(" ")[0]));
            }
        }
        try (Run run = new Run("exit-0-20", true)) { // SIGNAL set, CODE not 128 + SIGNAL: not an exit the guest can make
            GuestPeer.Guest guest = run.converse();
            send(guest.out(), EXIT, 0, "0 20");
            assertThat(run.awaitEnd()).isEqualTo(125);
        }
    }

    /** Item 4, the exec relay: an exec's exit that names SIGTTIN is its status, the exec relay is never stopped. */
    @Test
    void anExecsExitStatusIsAStatusOnly() throws Exception {
        try (Run run = new Run("exec", true)) {
            GuestPeer.Guest guest = run.converse();
            send(guest.out(), STARTED, 0, "1");
            Path spec = Files.write(run.dir.resolve("exec.spec"), bytes("arg=true\0"));
            Process exec = run.sanitized(new ProcessBuilder(asanShim().toString(), "--relay-exec",
                    run.relay.vm().resolve("exec.sock").toString(), spec.toString())
                    .redirectOutput(run.dir.resolve("exec.stdout").toFile())
                    .redirectError(run.dir.resolve("exec.stderr").toFile())).start();
            Watch execWatch = new Watch(exec);
            try {
                GuestPeer.Frame request = run.next(guest);
                assertThat(request.type()).isEqualTo(EXEC);
                assertThat(request.stream()).isPositive();
                assertThat(request.payload()).isEqualTo(bytes("arg=true\0"));
                send(guest.out(), STARTED, request.stream(), "77");
                send(guest.out(), STDOUT, request.stream(), "out\n");
                send(guest.out(), EXIT, request.stream(), "149 21");
                assertThat(exec.waitFor(END_DEADLINE.toSeconds(), TimeUnit.SECONDS)).as("the exec relay ended").isTrue();
            } finally {
                execWatch.stop();
                exec.destroyForcibly();
            }
            assertThat(exec.exitValue()).isEqualTo(149);
            assertThat(execWatch.stopped()).as("the exec relay was never stopped").isFalse();
            assertThat(Files.readString(run.dir.resolve("exec.stdout"))).isEqualTo("out\n");
            assertNoSanitizerReport(Files.readString(run.dir.resolve("exec.stderr"), StandardCharsets.ISO_8859_1));
            send(guest.out(), EXIT, 0, "0 0");
            assertThat(run.next(guest).type()).isEqualTo(BYE);
            assertThat(run.end(guest)).isZero();
        }
    }

    /**
     * Item 3: an ERROR (even an empty one) is the end: one BYE, whatever EXITs and ERRORs follow, and the stop deadline
     * runs from it, so the relay ends on its own although the "VM" never powers off. Frames after it are ignored.
     */
    @Test
    void oneEndThenOnlyTheShutdownWhateverTheGuestSends() throws Exception {
        try (Run run = new Run("error-flood", true)) {
            GuestPeer.Guest guest = run.converse();
            send(guest.out(), ERROR, 0, "");
            long ended = System.nanoTime();
            byte[] big = new byte[65536];
            Arrays.fill(big, (byte) 'e');
            ByteArrayOutputStream flood = new ByteArrayOutputStream();
            flood.write(frame(EXIT, 0, bytes("4 0")));
            flood.write(frame(ERROR, 0, big));
            flood.write(frame(EXIT, 0, bytes("137 9")));
            flood.write(frame(STDOUT, 0, bytes("late\n")));
            flood.write(frame(ERROR, 0, bytes("again")));
            Thread writer = Thread.ofVirtual().start(() -> run.flood(guest, flood.toByteArray(), 1L << 30,
                    STOP_DEADLINE.plusSeconds(5)));
            int byes = 0, others = 0;
            try {
                while (true) {
                    int type = run.next(guest, STOP_DEADLINE.plus(END_DEADLINE)).type();
                    if (type == BYE) byes++;
                    else others++;
                }
            } catch (IOException endOfChannel) {
                // the relay ended and its end of the channel closed
            }
            writer.join();
            assertThat(byes).as("BYEs").isOne();
            assertThat(others).as("other frames after START").isZero();
            assertThat(run.awaitEnd()).isEqualTo(125);
            assertThat(Duration.ofNanos(System.nanoTime() - ended)).as("ended by the stop deadline")
                    .isLessThan(STOP_DEADLINE.plus(END_DEADLINE));
            assertThat(run.stderr().lines()).containsExactly("kiln: the VM could not start the sandbox: guest: ");
            assertThat(run.relay.file("stdout")).isEmpty();
        }
    }

    /**
     * Item 5: a 65,536-byte frame of an unknown type and a HELLO without a NUL filling the relay's 131,088-byte buffer
     * exactly: the relay once ran strlen off its end (ASan: global-buffer-overflow). The relay is held stopped while
     * both are written, so that one read takes them together, as a guest can arrange; that stop is the test's own.
     */
    @Test
    void aHelloWithoutItsNulAtTheEndOfTheBuffer() throws Exception {
        try (Run run = new Run("hello-overflow", true)) {
            GuestPeer.Guest guest = run.relay.connect();
            assertThat(read(guest.in()).type()).isEqualTo(HELLO);
            byte[] unknown = new byte[65536], hello = new byte[65536];
            Arrays.fill(hello, (byte) 'A');
            ByteBuffer both = ByteBuffer.allocate(2 * (8 + 65536)).put(frame(200, 0, unknown)).put(frame(HELLO, 0, hello));
            guest.channel().setOption(StandardSocketOptions.SO_SNDBUF, 1 << 20); // all of it written while stopped
            run.watch.pause();
            signal(run.relay.process(), "STOP");
            AtomicBoolean whole = new AtomicBoolean();
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    guest.out().write(both.array());
                    whole.set(true);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            writer.join(Duration.ofSeconds(5));
            signal(run.relay.process(), "CONT");
            run.watch.resume();
            assertThat(whole).as("both frames were written before the relay read any").isTrue();
            assertThat(run.awaitEnd()).isEqualTo(125);
            assertThat(run.stderr()).contains("kiln: the guest broke the protocol (a malformed frame)");
        }
    }

    /** Length fields beyond 65,536, and a frame cut short by the guest's end: refused or waited for, never read past. */
    @Test
    void oversizeAndTruncatedFrames() throws Exception {
        for (int length : new int[] {65537, 1 << 20, -1}) {
            try (Run run = new Run("oversize-" + length, true)) {
                GuestPeer.Guest guest = run.converse();
                guest.out().write(ByteBuffer.allocate(8 + 16).put((byte) STDOUT).put((byte) 0).putShort((short) 0)
                        .putInt(length).put(new byte[16]).array());
                assertThat(run.awaitEnd()).as("length %d", length & 0xffffffffL).isEqualTo(125);
                assertThat(run.stderr()).contains("broke the protocol");
            }
        }
        try (Run run = new Run("truncated", true)) {
            GuestPeer.Guest guest = run.converse();
            guest.out().write(ByteBuffer.allocate(8 + 10).put((byte) STDOUT).put((byte) 0).putShort((short) 0)
                    .putInt(1000).put(bytes("only a bit")).array());
            assertThat(run.end(guest)).isEqualTo(125);
            assertThat(run.relay.file("stdout")).isEmpty();
            assertThat(run.stderr()).contains("kiln: the VM stopped before its workload exited");
        }
    }

    /**
     * Item 3: a guest that floods its output while nobody reads the relay's: the relay stops reading the guest (its
     * writes block), its memory stays bounded, and once the host reads again every byte arrives, then the exit.
     */
    @Test
    void aFloodIsHeldBackWhileTheHostDoesNotRead() throws Exception {
        try (Run run = new Run("flood", false)) {
            GuestPeer.Guest guest = run.converse();
            int frames = 768; // 48 MiB
            byte[] chunk = new byte[65536];
            new Random(seed).nextBytes(chunk);
            AtomicInteger written = new AtomicInteger();
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    for (int i = 0; i < frames; i++) {
                        guest.out().write(frame(STDOUT, 0, chunk));
                        written.incrementAndGet();
                    }
                    send(guest.out(), EXIT, 0, "0 0");
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            Thread.sleep(3000);
            assertThat(written.get()).as("frames the relay took while its stdout was not read").isLessThan(frames / 4);
            assertThat(run.watch.maxRss()).isLessThan(RSS_LIMIT);
            AtomicLong out = new AtomicLong();
            Thread reader = Thread.ofVirtual().start(() -> {
                try (InputStream in = run.relay.process().getInputStream()) {
                    byte[] buf = new byte[1 << 16];
                    for (int r; (r = in.read(buf)) > 0; ) out.addAndGet(r);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            writer.join(Duration.ofSeconds(60));
            assertThat(writer.isAlive()).as("the guest's writes went through once the host read").isFalse();
            assertThat(run.next(guest).type()).isEqualTo(BYE);
            assertThat(run.end(guest)).isZero();
            reader.join(Duration.ofSeconds(10));
            assertThat(out.get()).isEqualTo((long) frames * chunk.length);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Random and mutated conversations

    /** Random frames of every type (known ones with payloads near the edges), on random streams, some lengths lying. */
    @Test
    void randomFrames() throws Exception {
        Random r = new Random(seed);
        for (int i = 0; i < RANDOM_CASES; i++) {
            List<byte[]> script = new ArrayList<>();
            boolean hello = r.nextInt(5) != 0;
            if (hello) script.add(frame(HELLO, 0, bytes("version=1\0uptime_ms=" + r.nextInt(100000) + "\0")));
            for (int k = r.nextInt(30) + 1; k > 0; k--) script.add(randomFrame(r));
            if (r.nextBoolean()) script.add(frame(EXIT, 0, bytes(r.nextInt(256) + " 0")));
            play("random-" + i, script);
        }
    }

    /** A valid conversation with a few bytes flipped, set to edge values, dropped, repeated or cut off. */
    @Test
    void mutatedConversations() throws Exception {
        Random r = new Random(seed ^ 0x5eed);
        ByteArrayOutputStream valid = new ByteArrayOutputStream();
        valid.write(frame(HELLO, 0, bytes("version=1\0uptime_ms=123\0")));
        valid.write(frame(STARTED, 0, bytes("42")));
        valid.write(frame(STDOUT, 0, bytes("hi\n")));
        valid.write(frame(STDERR, 0, bytes("err\n")));
        valid.write(frame(EXIT, 0, bytes("143 15")));
        byte[] base = valid.toByteArray();
        for (int i = 0; i < MUTATED_CASES; i++) {
            byte[] b = base.clone();
            for (int k = r.nextInt(6) + 1; k > 0; k--) b = mutate(b, r);
            play("mutated-" + i, List.of(b));
        }
    }

    /** One relay: the host's HELLO is taken, the script written (what the relay still reads), then the end. */
    void play(String name, List<byte[]> script) throws Exception {
        try (Run run = new Run(name, true)) {
            GuestPeer.Guest guest = run.relay.connect();
            assertThat(read(guest.in()).type()).isEqualTo(HELLO);
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    for (byte[] b : script) guest.out().write(b);
                } catch (IOException e) {
                    // the relay ended the conversation (a protocol violation): what it did then is checked below
                }
            });
            writer.join(END_DEADLINE);
            assertThat(writer.isAlive()).as("%s: the relay read what the guest wrote", name).isFalse();
            int code = run.end(guest);
            assertThat(code).as(name).isBetween(0, 255);
        } catch (AssertionError e) {
            throw new AssertionError("case " + name + " (seed " + seed + "): " + e.getMessage(), e);
        }
    }

    static final String[] NUMBERS = {"0", "1", "-1", "20", "21", "22", "64", "65", "127", "128", "137", "143", "148",
        "255", "256", "-2147483648", "2147483647", "4294967296", "18446744073709551616", "99999999999999999999999",
        "+1", " 1", "1 ", "0x10", "", "00", "1e3", "\u00001"};

    static byte[] randomFrame(Random r) {
        int[] guest = {HELLO, STDOUT, STDERR, EXIT, ERROR, STARTED};
        int[] host = {START, EXEC, GuestPeer.STDIN, GuestPeer.STDIN_CLOSE, GuestPeer.SIGNAL, GuestPeer.RESIZE, BYE};
        int pick = r.nextInt(10);
        int type = pick < 6 ? guest[r.nextInt(guest.length)] : pick < 8 ? host[r.nextInt(host.length)]
                : r.nextBoolean() ? 0 : 14 + r.nextInt(242);
        int stream = r.nextInt(4) == 0 ? r.nextInt(65536) : 0;
        byte[] payload = switch (r.nextInt(6)) {
            case 0 -> randomBytes(r, r.nextInt(64));
            case 1 -> randomBytes(r, r.nextInt(8) == 0 ? r.nextInt(65537) : r.nextInt(2048));
            case 2 -> bytes(number(r) + (r.nextInt(4) == 0 ? "" : " " + number(r)) + (r.nextInt(8) == 0 ? " 1" : ""));
            case 3 -> bytes("version=1\0uptime_ms=" + number(r) + (r.nextBoolean() ? "\0" : ""));
            case 4 -> bytes("text\n\u001b[31mkiln: forged\r\u0007" + number(r));
            default -> new byte[0];
        };
        ByteBuffer b = ByteBuffer.allocate(8 + payload.length).put((byte) type).put((byte) r.nextInt(256))
                .putShort((short) stream);
        int lie = r.nextInt(20);
        b.putInt(lie == 0 ? 65537 + r.nextInt(1 << 20) : lie == 1 ? -1 - r.nextInt(1000) : payload.length);
        return b.put(payload).array();
    }

    static String number(Random r) {
        return NUMBERS[r.nextInt(NUMBERS.length)];
    }

    static byte[] mutate(byte[] b, Random r) {
        if (b.length == 0) return b;
        int at = r.nextInt(b.length);
        return switch (r.nextInt(5)) {
            case 0 -> { // flip a bit
                byte[] c = b.clone();
                c[at] ^= (byte) (1 << r.nextInt(8));
                yield c;
            }
            case 1 -> { // an edge value
                byte[] c = b.clone();
                byte[] edges = {0, 1, ' ', '-', '9', 0x7f, (byte) 0x80, (byte) 0xff};
                c[at] = edges[r.nextInt(edges.length)];
                yield c;
            }
            case 2 -> { // drop a range
                int n = Math.min(b.length - at, 1 + r.nextInt(8));
                byte[] c = new byte[b.length - n];
                System.arraycopy(b, 0, c, 0, at);
                System.arraycopy(b, at + n, c, at, b.length - at - n);
                yield c;
            }
            case 3 -> { // repeat a range
                int n = Math.min(b.length - at, 1 + r.nextInt(24));
                byte[] c = new byte[b.length + n];
                System.arraycopy(b, 0, c, 0, at + n);
                System.arraycopy(b, at, c, at + n, b.length - at);
                yield c;
            }
            default -> Arrays.copyOf(b, at); // cut off
        };
    }

    static byte[] randomBytes(Random r, int n) {
        byte[] b = new byte[n];
        r.nextBytes(b);
        return b;
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static void signal(Process p, String sig) throws Exception {
        assertThat(new ProcessBuilder("kill", "-" + sig, Long.toString(p.pid())).start().waitFor()).isZero();
    }

    static void assertNoSanitizerReport(String stderr) {
        assertThat(stderr).doesNotContain("AddressSanitizer").doesNotContain("runtime error")
                .doesNotContain("LeakSanitizer").doesNotContain("UndefinedBehaviorSanitizer");
    }

    // ------------------------------------------------------------------------------------------------------------

    /** One ASan relay for one case, watched from start to end. */
    final class Run implements AutoCloseable {
        final Path dir;
        final GuestPeer.Relay relay;
        final Watch watch;
        GuestPeer.Guest guest;

        Run(String name, boolean stdoutToFile) throws IOException {
            CASES.incrementAndGet();
            dir = Files.createDirectories(tmp.resolve(name));
            relay = GuestPeer.Relay.start(asanShim(), dir, 30, stdoutToFile, sanitizerEnv());
            watch = new Watch(relay.process());
        }

        /** Sanitizer reports as files in the case's directory too; any error ends the relay with a telling code. */
        Map<String, String> sanitizerEnv() {
            return Map.of("ASAN_OPTIONS", "halt_on_error=1:abort_on_error=0:exitcode=" + ASAN_EXIT
                            + ":detect_leaks=0:log_path=" + dir.resolve("asan"),
                    "UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1:exitcode=" + UBSAN_EXIT
                            + ":log_path=" + dir.resolve("ubsan"));
        }

        ProcessBuilder sanitized(ProcessBuilder pb) {
            pb.environment().putAll(sanitizerEnv());
            return pb;
        }

        GuestPeer.Guest converse() throws Exception {
            guest = relay.converse();
            return guest;
        }

        /** The relay's next frame to the guest, within {@link #END_DEADLINE}; IOException at the channel's end. */
        GuestPeer.Frame next(GuestPeer.Guest g) throws Exception {
            return next(g, END_DEADLINE);
        }

        GuestPeer.Frame next(GuestPeer.Guest g, Duration within) throws Exception {
            CompletableFuture<GuestPeer.Frame> frame = new CompletableFuture<>();
            Thread.ofVirtual().start(() -> {
                try {
                    frame.complete(read(g.in()));
                } catch (Throwable e) {
                    frame.completeExceptionally(e);
                }
            });
            try {
                return frame.get(within.toMillis(), TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                g.close();
                return fail("no frame from the relay within " + within + " (is it stopped, or still running?)");
            } catch (ExecutionException e) {
                if (e.getCause() instanceof Exception cause) throw cause;
                throw e;
            }
        }

        /**
         * Writes {@code frame} again and again (at most {@code limit} bytes, for at most {@code time}) while the relay
         * reads; the bytes written. Ends quietly when the relay closes the channel.
         */
        long flood(GuestPeer.Guest g, byte[] frame, long limit, Duration time) {
            byte[] batch = new byte[Math.max(frame.length, 1 << 16) / frame.length * frame.length];
            for (int i = 0; i < batch.length; i += frame.length) System.arraycopy(frame, 0, batch, i, frame.length);
            long sent = 0, deadline = System.nanoTime() + time.toNanos();
            try {
                while (sent < limit && System.nanoTime() < deadline) {
                    g.out().write(batch);
                    sent += batch.length;
                }
            } catch (IOException closed) {
                // the relay ended the conversation
            }
            return sent;
        }

        /** The guest's end closes, the "VM" powers off; then as {@link #awaitEnd}. */
        int end(GuestPeer.Guest g) throws Exception {
            g.close();
            relay.powerOff();
            return awaitEnd();
        }

        /** The relay ends within the deadline, unharmed; its exit code. */
        int awaitEnd() throws Exception {
            Process p = relay.process();
            boolean ended = p.waitFor(END_DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
            watch.stop();
            assertThat(watch.stopped()).as("the relay was stopped (state T)").isFalse();
            assertThat(ended).as("the relay ended within %s", END_DEADLINE).isTrue();
            assertNoSanitizerReport(stderr());
            try (Stream<Path> files = Files.list(dir)) {
                assertThat(files.map(f -> f.getFileName().toString())).as("sanitizer reports")
                        .noneMatch(f -> f.startsWith("asan") || f.startsWith("ubsan"));
            }
            assertThat(watch.maxRss()).as("the relay's peak RSS").isLessThan(RSS_LIMIT);
            return p.exitValue();
        }

        /** The relay's stderr: its own lines and the guest's stream-0 stderr, any bytes (one char each). */
        String stderr() throws IOException {
            return Files.readString(dir.resolve("stderr"), StandardCharsets.ISO_8859_1);
        }

        @Override
        public void close() throws Exception {
            watch.stop();
            if (guest != null) guest.close();
            relay.process().destroyForcibly();
            relay.process().waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** Samples a process's resident memory and state (/proc/PID/status, /proc/PID/stat) every few milliseconds. */
    static final class Watch {
        private final long pid;
        private final AtomicLong maxRss = new AtomicLong();
        private volatile boolean running = true, paused, stopped;
        private final Thread thread;

        Watch(Process p) {
            pid = p.pid();
            thread = Thread.ofPlatform().daemon().name("watch-" + pid).start(this::sample);
        }

        private void sample() {
            while (running) {
                try {
                    for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
                        if (line.startsWith("VmRSS:")) {
                            long kb = Long.parseLong(line.substring(6).strip().split("\\s+")[0]);
                            maxRss.accumulateAndGet(kb << 10, Math::max);
                        }
                    }
                    String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
                    char state = stat.charAt(stat.lastIndexOf(')') + 2);
                    if ((state == 'T' || state == 't') && !paused) stopped = true;
                    Thread.sleep(5);
                } catch (IOException | RuntimeException e) {
                    return; // gone
                } catch (InterruptedException e) {
                    return;
                }
            }
        }

        /** A stop the test makes itself is not the relay's. */
        void pause() {
            paused = true;
        }

        void resume() throws InterruptedException {
            Thread.sleep(20); // one sample after SIGCONT has taken effect
            paused = false;
        }

        void stop() throws InterruptedException {
            running = false;
            thread.join(1000);
        }

        long maxRss() {
            return maxRss.get();
        }

        boolean stopped() {
            return stopped;
        }
    }
}
