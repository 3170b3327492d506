package dev.kiln.reliability;

import dev.kiln.testing.Command;
import dev.kiln.testing.KilndProcess;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Clients that open a request and never finish it cannot take kilnd down (issue 11, item 7: 200 connections each
 * sending headers with Content-Length 1000 and one byte of body left {@code _ping} unanswered until a restart). One
 * kilnd of its own process, with its idle timeout shortened to {@value #IDLE_SECONDS} s, takes 300 such clients at
 * once and still answers {@code _ping}, {@code ps} and {@code run}; it cuts a stalled or trickled body, and
 * trickled headers, after the timeout; it gives every descriptor back once the clients are gone; and the streams
 * that are quiet by nature (an attached run, stdin typed slowly, Docker's hijacked attach and wait) outlive the
 * timeout untouched.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class SlowClientsTest {

    static final int IDLE_SECONDS = 10;
    static final int CLIENTS = 300;
    /** kilnd's default bound on the request bodies it waits for from one peer (here: root). */
    static final int PER_PEER = 64;

    /** Each client on a thread of its own (the common pool may have one thread on a 2-core machine). */
    static final ExecutorService THREADS = Executors.newVirtualThreadPerTaskExecutor();

    @TempDir
    static Path tmp;
    static Path root;
    static Path runRoot;
    static KilndProcess kilnd;
    static KilnCli kiln;
    static String image;

    @BeforeAll
    static void startDaemon() {
        Command.require("runc", "runc");
        root = tmp.resolve("root");
        runRoot = tmp.resolve("run");
        kilnd = KilndProcess.start(root, runRoot,
                Map.of("kiln.api.idle-timeout-ms", Long.toString(TimeUnit.SECONDS.toMillis(IDLE_SECONDS))));
        kiln = new KilnCli(kilnd);
        image = BusyboxImage.importInto(kiln, tmp);
    }

    @AfterAll
    static void stopDaemon() {
        DaemonProcessTest.stop(kiln, kilnd, root, runRoot);
    }

    @Test
    void threeHundredSlowBodiesLeavePingPsAndRunAnswering() throws Exception {
        long pid = kilnd.pid();
        assertThat(RawHttp.request(kilnd.socket(), "GET", "/_ping", null).status()).isEqualTo(200);
        int baseline = openFds(pid);
        long fdLimit = fdLimit(pid);
        System.out.println("kilnd: " + baseline + " descriptors open before the clients, soft limit " + fdLimit);
        assertThat(fdLimit).as("kilnd's descriptor limit leaves room for %d clients", CLIENTS)
                .isGreaterThan(baseline + 2L * CLIENTS);

        try (SlowBodies slow = new SlowBodies(kilnd.socket())) {
            slow.open(CLIENTS);
            // sees each answer as it comes, so that its time is kilnd's, not when the test looked
            AtomicBoolean watching = new AtomicBoolean(true);
            Thread watcher = Thread.ofVirtual().start(() -> {
                while (watching.get()) {
                    slow.poll(50);
                }
            });
            try {
                long t0 = System.nanoTime();
                RawHttp.Response ping = within(Duration.ofSeconds(5), "GET /_ping",
                        () -> RawHttp.request(kilnd.socket(), "GET", "/_ping", null));
                assertThat(ping.status()).isEqualTo(200);
                assertThat(ping.body()).isEqualTo("OK");
                long pingMs = millisSince(t0);
                RawHttp.Response dockerPs = within(Duration.ofSeconds(5), "GET /containers/json",
                        () -> RawHttp.request(kilnd.socket(), "GET", "/containers/json?all=1", null));
                assertThat(dockerPs.status()).as(dockerPs.body()).isEqualTo(200);
                assertThat(dockerPs.json().isArray()).isTrue();
                RawHttp.Response nativePs = within(Duration.ofSeconds(5), "GET /v1/sandboxes",
                        () -> RawHttp.request(kilnd.socket(), "GET", "/v1/sandboxes", null));
                assertThat(nativePs.status()).as(nativePs.body()).isEqualTo(200);

                long runStart = System.nanoTime();
                KilnCli.Result run = kiln.process(Duration.ofSeconds(60), "run", "--rm", image, "sh", "-c",
                        "echo ran");
                assertThat(run.exitCode()).as(run.toString()).isZero();
                assertThat(run.out()).isEqualTo("ran\n");
                long runMs = millisSince(runStart);

                // kilnd waits for at most PER_PEER bodies of one peer: the others are answered at once (429, or 408
                // for the most stalled when a newer one came), not held until the timeout
                awaitUntil(() -> slow.open() <= PER_PEER, Duration.ofSeconds(IDLE_SECONDS + 10));
                int during = openFds(pid);
                long early = slow.answersBefore(TimeUnit.SECONDS.toMillis(IDLE_SECONDS - 1));
                System.out.println("with " + CLIENTS + " slow clients: _ping " + pingMs + " ms, run " + runMs
                        + " ms; after " + millisSince(slow.openedAt) + " ms kilnd holds " + during
                        + " descriptors, " + slow.open() + " clients still waiting, " + early
                        + " answered before the timeout: " + slow.answers());
                assertThat(early).as("slow clients answered before the timeout: " + slow.answers())
                        .isGreaterThanOrEqualTo(CLIENTS - PER_PEER);
                assertThat(slow.answers().keySet()).as("answers to the slow clients").containsAnyOf(408, 429)
                        .isSubsetOf(408, 429);
                assertThat(during - baseline).as("descriptors kilnd holds for %d slow clients of one user", CLIENTS)
                        .isLessThanOrEqualTo(PER_PEER + 10);
            } finally {
                watching.set(false);
                watcher.join();
            }
        }

        // the clients close while kilnd still waits for their bodies: it lets go of them at once, not at the timeout
        long closed = System.nanoTime();
        long deadline = closed + TimeUnit.SECONDS.toNanos(5);
        int after = openFds(pid);
        while (after > baseline + 2 && System.nanoTime() < deadline) {
            Thread.sleep(50);
            after = openFds(pid);
        }
        System.out.println("after the clients closed: " + after + " descriptors (baseline " + baseline + ") in "
                + millisSince(closed) + " ms");
        assertThat(after).as("descriptors once the slow clients are gone (baseline %d)", baseline)
                .isLessThanOrEqualTo(baseline + 2);
        assertThat(RawHttp.request(kilnd.socket(), "GET", "/_ping", null).status()).isEqualTo(200);
    }

    @Test
    void aStalledOrTrickledRequestIsCutAfterTheTimeout() throws Exception {
        long t0 = System.nanoTime();
        SocketChannel stalled = slowBody(kilnd.socket());
        SocketChannel trickledBody = slowBody(kilnd.socket());
        SocketChannel trickledHead = SocketChannel.open(UnixDomainSocketAddress.of(kilnd.socket()));
        trickledHead.write(ByteBuffer.wrap("GET /_ping HTTP/1.1\r\nHost: kilnd\r\nX-Slow: "
                .getBytes(StandardCharsets.US_ASCII)));
        AtomicInteger bodyBytes = new AtomicInteger(1);
        AtomicInteger headBytes = new AtomicInteger(0);
        // JSON whitespace in the body, a header value's letters in the head
        List<Thread> tricklers = List.of(trickle(trickledBody, ' ', bodyBytes),
                trickle(trickledHead, 'a', headBytes));
        try {
            CompletableFuture<String> stalledAnswer = CompletableFuture.supplyAsync(() -> readToEnd(stalled), THREADS);
            CompletableFuture<String> bodyAnswer = CompletableFuture.supplyAsync(() -> readToEnd(trickledBody),
                    THREADS);
            CompletableFuture<String> headAnswer = CompletableFuture.supplyAsync(() -> readToEnd(trickledHead),
                    THREADS);
            long[] closedMs = new long[3];
            String s = stalledAnswer.get(IDLE_SECONDS + 10, TimeUnit.SECONDS);
            closedMs[0] = millisSince(t0);
            String b = bodyAnswer.get(IDLE_SECONDS + 10, TimeUnit.SECONDS);
            closedMs[1] = millisSince(t0);
            headAnswer.get(IDLE_SECONDS + 10, TimeUnit.SECONDS);
            closedMs[2] = millisSince(t0);
            System.out.println("closed after: stalled body " + closedMs[0] + " ms, trickled body (" + bodyBytes.get()
                    + " bytes) " + closedMs[1] + " ms, trickled headers (" + headBytes.get() + " bytes) " + closedMs[2]
                    + " ms; " + s.lines().findFirst().orElse(""));
            assertThat(s).startsWith("HTTP/1.1 408 ").contains("the request body stalled");
            assertThat(b).startsWith("HTTP/1.1 408 ").contains("the request body stalled");
            for (long ms : closedMs) {
                assertThat(ms).as("closed after the idle timeout of %d s, not before nor long after", IDLE_SECONDS)
                        .isBetween(TimeUnit.SECONDS.toMillis(IDLE_SECONDS) - 500,
                                TimeUnit.SECONDS.toMillis(IDLE_SECONDS + 5));
            }
            assertThat(bodyBytes.get()).as("the trickling client kept sending its body").isGreaterThan(IDLE_SECONDS);
            assertThat(headBytes.get()).as("the trickling client kept sending its headers").isGreaterThan(IDLE_SECONDS);
        } finally {
            tricklers.forEach(Thread::interrupt);
            stalled.close();
            trickledBody.close();
            trickledHead.close();
        }
    }

    @Test
    void quietStreamsOutliveTheIdleTimeout() throws Exception {
        String quiet = Integer.toString(IDLE_SECONDS + 3);
        // an attached native run whose output is silent for longer than the timeout
        CompletableFuture<KilnCli.Result> attached = CompletableFuture.supplyAsync(() -> kiln.process(
                Duration.ofSeconds(60), "run", "--rm", image, "sh", "-c", "sleep " + quiet + "; echo still-here"),
                THREADS);
        // stdin typed slowly: the body of POST .../stdin pauses for longer than the timeout
        CompletableFuture<String> typed = CompletableFuture.supplyAsync(() -> slowStdin(
                kilnd.cli("run", "-i", "--rm", image, "cat"), Integer.parseInt(quiet)), THREADS);
        // Docker's hijacked attach and its wait, quiet as long
        Path docker = Command.which("docker");
        CompletableFuture<String> dockerRun = docker == null ? CompletableFuture.completedFuture("skipped")
                : CompletableFuture.supplyAsync(() -> Command.run(Duration.ofSeconds(60), List.of(docker.toString(),
                "--config", tmp.resolve("docker-config").toString(), "-H", kilnd.host(), "run", "--rm", image,
                "sh", "-c", "sleep " + quiet + "; echo still-here")), THREADS);
        CompletableFuture<String> dockerStdin = docker == null ? CompletableFuture.completedFuture("skipped")
                : CompletableFuture.supplyAsync(() -> slowStdin(List.of(docker.toString(), "--config",
                tmp.resolve("docker-config").toString(), "-H", kilnd.host(), "run", "-i", "--rm", image, "cat"),
                Integer.parseInt(quiet)), THREADS);

        KilnCli.Result r = attached.get(90, TimeUnit.SECONDS);
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).isEqualTo("still-here\n");
        assertThat(typed.get(90, TimeUnit.SECONDS)).isEqualTo("before\nafter\n");
        if (docker != null) {
            assertThat(dockerRun.get(90, TimeUnit.SECONDS)).isEqualTo("still-here\n");
            assertThat(dockerStdin.get(90, TimeUnit.SECONDS)).isEqualTo("before\nafter\n");
        }
    }

    // ---- helpers ----

    /**
     * Many raw connections, each having sent a request's headers with Content-Length 1000 and one byte of the body,
     * then nothing; whatever kilnd answers before closing one is counted by status.
     */
    static final class SlowBodies implements AutoCloseable {
        private final Path socket;
        private final Selector selector;
        private final Map<Integer, Integer> answers = new TreeMap<>();
        private final List<Long> answeredAt = new ArrayList<>();
        long openedAt;

        SlowBodies(Path socket) throws IOException {
            this.socket = socket;
            this.selector = Selector.open();
        }

        void open(int n) {
            openedAt = System.nanoTime();
            for (int i = 0; i < n; i++) {
                try {
                    SocketChannel ch = slowBody(socket);
                    ch.configureBlocking(false);
                    ch.register(selector, SelectionKey.OP_READ, new StringBuilder());
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot open slow client " + (i + 1), e);
                }
            }
        }

        /** Reads what kilnd sent; a connection kilnd closed is counted under its answer's status and dropped. */
        synchronized void poll(long millis) {
            try {
                selector.select(millis);
                ByteBuffer buf = ByteBuffer.allocate(4096);
                for (SelectionKey key : selector.selectedKeys()) {
                    SocketChannel ch = (SocketChannel) key.channel();
                    StringBuilder got = (StringBuilder) key.attachment();
                    int n;
                    try {
                        buf.clear();
                        while ((n = ch.read(buf)) > 0) {
                            got.append(new String(buf.array(), 0, n, StandardCharsets.ISO_8859_1));
                            buf.clear();
                        }
                    } catch (IOException e) {
                        n = -1;
                    }
                    if (n < 0) {
                        int status = got.length() >= 12 && got.toString().startsWith("HTTP/1.1 ")
                                ? Integer.parseInt(got.substring(9, 12)) : 0;
                        answers.merge(status, 1, Integer::sum);
                        answeredAt.add(millisSince(openedAt));
                        key.cancel();
                        ch.close();
                    }
                }
                selector.selectedKeys().clear();
                selector.selectNow(); // flushes the cancelled keys
                selector.selectedKeys().clear();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        synchronized int open() {
            return selector.keys().size();
        }

        /** How many clients kilnd answered (and closed) within {@code millis} of their opening. */
        synchronized long answersBefore(long millis) {
            return answeredAt.stream().filter(ms -> ms < millis).count();
        }

        /** Statuses of the answers kilnd gave before closing (0: closed without one). */
        synchronized Map<Integer, Integer> answers() {
            return new TreeMap<>(answers);
        }

        @Override
        public synchronized void close() throws IOException {
            for (SelectionKey key : selector.keys()) {
                key.channel().close();
            }
            selector.close();
        }
    }

    /** Writes {@code b} to {@code ch} every half second (never idle, never done) until it fails or is interrupted. */
    private static Thread trickle(SocketChannel ch, char b, AtomicInteger sent) {
        return Thread.ofVirtual().start(() -> {
            try {
                while (true) {
                    Thread.sleep(500);
                    ch.write(ByteBuffer.wrap(new byte[] {(byte) b}));
                    sent.incrementAndGet();
                }
            } catch (IOException | InterruptedException e) {
                // kilnd closed it, or the test is over
            }
        });
    }

    static SocketChannel slowBody(Path socket) throws IOException {
        SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket));
        ch.write(ByteBuffer.wrap(("POST /containers/create HTTP/1.1\r\nHost: kilnd\r\n"
                + "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
                .getBytes(StandardCharsets.US_ASCII)));
        return ch;
    }

    private static String readToEnd(SocketChannel ch) {
        StringBuilder got = new StringBuilder();
        ByteBuffer buf = ByteBuffer.allocate(4096);
        try {
            int n;
            while ((n = ch.read(buf)) >= 0) {
                got.append(new String(buf.array(), 0, n, StandardCharsets.UTF_8));
                buf.clear();
            }
        } catch (IOException e) {
            // reset by kilnd after its answer: what was read is the answer
        }
        return got.toString();
    }

    /** Runs {@code argv} with "before" on stdin, a pause of {@code seconds}, then "after" and the end; its stdout. */
    private static String slowStdin(List<String> argv, int seconds) {
        try {
            Path out = Files.createTempFile(tmp, "stdin-", ".out");
            Path err = Files.createTempFile(tmp, "stdin-", ".err");
            Process p = new ProcessBuilder(argv).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            try (OutputStream in = p.getOutputStream()) {
                in.write("before\n".getBytes(StandardCharsets.UTF_8));
                in.flush();
                Thread.sleep(TimeUnit.SECONDS.toMillis(seconds));
                in.write("after\n".getBytes(StandardCharsets.UTF_8));
            }
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                Command.destroyTree(p.toHandle());
                throw new AssertionError(argv + " did not finish; stderr: " + Files.readString(err));
            }
            assertThat(p.exitValue()).as(argv + " stderr: " + Files.readString(err)).isZero();
            return Files.readString(out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    /** {@code call}'s answer, or a failure saying kilnd did not answer within {@code limit}. */
    private static <T> T within(Duration limit, String what, Supplier<T> call) throws InterruptedException {
        CompletableFuture<T> f = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try {
                f.complete(call.get());
            } catch (Throwable t) {
                f.completeExceptionally(t);
            }
        });
        try {
            return f.get(limit.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError(what + ": kilnd did not answer within " + limit.toSeconds() + " s");
        } catch (ExecutionException e) {
            throw new AssertionError(what + " failed", e.getCause());
        }
    }

    private static void awaitUntil(BooleanSupplier done, Duration limit) throws InterruptedException {
        long deadline = System.nanoTime() + limit.toNanos();
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
    }

    private static long millisSince(long t0) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    }

    static int openFds(long pid) {
        try (Stream<Path> fds = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
            return (int) fds.count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The soft RLIMIT_NOFILE of {@code pid}, from /proc/PID/limits. */
    static long fdLimit(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "limits"))) {
            if (line.startsWith("Max open files")) {
                String[] f = line.substring("Max open files".length()).trim().split("\\s+");
                return f[0].equals("unlimited") ? Long.MAX_VALUE : Long.parseLong(f[0]);
            }
        }
        throw new IllegalStateException("no open-files limit in /proc/" + pid + "/limits");
    }
}
