package dev.kiln.tls;

import dev.kiln.api.daemon.Kilnd;
import dev.kiln.api.daemon.TlsListener;
import dev.kiln.testing.Command;
import dev.kiln.testing.RootBridges;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * kilnd on TCP with mutual TLS, as users reach it: a daemon listening on its unix socket and on
 * {@code tcp://127.0.0.1:<free port>} with a CA, server certificate and key made by {@code openssl}; the kiln CLI (and
 * the docker CLI) as separate processes with Docker's TLS flags. Right certificates work; no client certificate, one
 * from another CA, or a daemon the client cannot verify are refused in one line with exit 125; a TCP listener without
 * TLS files is never opened.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class RemoteAccessTest {

    private static final Duration CLI_TIMEOUT = Duration.ofSeconds(60);
    private static final String IMAGE = "kiln-test/busybox:tls";
    /** kilnd's idle timeout here, shortened from 30 s so that dropping a silent peer is seen in a test. */
    private static final int IDLE_SECONDS = 5;

    @TempDir
    static Path tmp;
    static TestCertificates pki;
    static Kilnd.Running daemon;
    static String tcp;
    static Path noDefaults;

    record Result(int exitCode, String out, String err) {
        @Override
        public String toString() {
            return "exit " + exitCode + "\nstdout: " + out + "\nstderr: " + err;
        }
    }

    @BeforeAll
    static void start() throws IOException {
        pki = TestCertificates.create(tmp.resolve("pki"));
        noDefaults = Files.createDirectories(tmp.resolve("empty-home"));
        System.setProperty("kiln.api.idle-timeout-ms", Long.toString(TimeUnit.SECONDS.toMillis(IDLE_SECONDS)));
        try {
            daemon = Kilnd.start(Kilnd.Options.read(Path.of("/nonexistent/kiln.yaml"), tmp.resolve("root"),
                    tmp.resolve("run"), List.of(), null, false).withTcpListeners(TlsListener.of(
                    List.of("tcp://127.0.0.1:0"), pki.ca(), pki.cert("server"), pki.key("server"))));
        } finally {
            System.clearProperty("kiln.api.idle-timeout-ms"); // read once, by the daemon's constructor
        }
        tcp = daemon.daemon().tcpAddresses().getFirst();
        assertThat(tcp).startsWith("tcp://127.0.0.1:").doesNotEndWith(":0");
    }

    @AfterAll
    static void stop() {
        if (daemon != null) {
            for (String id : kiln(unix(), "ps", "-a", "-q", "--no-trunc").out().lines().toList()) {
                kiln(unix(), "rm", "-f", id);
            }
            daemon.close();
            RootBridges.delete(tmp.resolve("root"));
        }
    }

    @Test
    void theRightClientCertificateReachesKilndOverTcp() {
        Result ps = kiln(asClient("client"), "ps", "-a");
        assertThat(ps.exitCode()).as(ps.toString()).isZero();
        assertThat(ps.out()).startsWith("CONTAINER ID");
        // a PKCS#1 RSA key ("BEGIN RSA PRIVATE KEY") works as well as the SEC1 EC key above
        Result rsa = kiln(asClient("rsa-client"), "images");
        assertThat(rsa.exitCode()).as(rsa.toString()).isZero();
    }

    @Test
    void runOverTcpStreamsOutputStdinAndTheExitCode() throws IOException {
        Command.require("runc", "runc");
        importImage();
        Result hi = kiln(asClient("client"), "run", "--rm", IMAGE, "echo", "hi");
        assertThat(hi.exitCode()).as(hi.toString()).isZero();
        assertThat(hi.out()).isEqualTo("hi\n");
        Result seven = kiln(asClient("client"), "run", "--rm", IMAGE, "sh", "-c", "exit 7");
        assertThat(seven.exitCode()).as(seven.toString()).isEqualTo(7);
        Result cat = kilnWithStdin("piped\n".getBytes(StandardCharsets.UTF_8), args(asClient("client"),
                "run", "-i", "--rm", IMAGE, "cat"), Map.of());
        assertThat(cat.exitCode()).as(cat.toString()).isZero();
        assertThat(cat.out()).isEqualTo("piped\n");
    }

    @Test
    void theUnixSocketServesAtTheSameTime() throws IOException {
        Command.require("runc", "runc");
        importImage();
        Result started = kiln(asClient("client"), "run", "-d", "--name", "tls-both", IMAGE, "sleep", "60");
        assertThat(started.exitCode()).as(started.toString()).isZero();
        try {
            Result ps = kiln(unix(), "ps", "--format", "json");
            assertThat(ps.exitCode()).as(ps.toString()).isZero();
            assertThat(ps.out()).contains("tls-both");
        } finally {
            Result rm = kiln(unix(), "rm", "-f", "tls-both");
            assertThat(rm.exitCode()).as(rm.toString()).isZero();
        }
    }

    @Test
    void aClientWithoutCertificateIsRefusedInOneLine() {
        Result r = kiln(List.of("-H", tcp, "--tlsverify", "--tlscacert", pki.ca().toString()), "ps");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(125);
        assertThat(r.err().lines().toList()).as(r.toString()).hasSize(1);
        assertThat(r.err()).startsWith("kiln: TLS handshake with kilnd at " + tcp + " failed")
                .contains("requires a client certificate");
        assertThat(r.out()).isEmpty();
    }

    @Test
    void aClientCertificateFromAnotherCaIsRefusedInOneLine() {
        Result r = kiln(List.of("-H", tcp, "--tlsverify", "--tlscacert", pki.ca().toString(),
                "--tlscert", pki.cert("intruder").toString(), "--tlskey", pki.key("intruder").toString()), "ps");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(125);
        assertThat(r.err().lines().toList()).as(r.toString()).hasSize(1);
        assertThat(r.err()).startsWith("kiln: TLS handshake with kilnd at " + tcp + " failed");
        assertThat(r.out()).isEmpty();
    }

    @Test
    void aDaemonWhoseCertificateTheClientCannotVerifyIsRefused() {
        Result r = kiln(List.of("-H", tcp, "--tlscacert", pki.otherCa().toString(),
                "--tlscert", pki.cert("client").toString(), "--tlskey", pki.key("client").toString()), "ps");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(125);
        assertThat(r.err().lines().toList()).as(r.toString()).hasSize(1);
        assertThat(r.err()).contains("not signed by the CA of --tlscacert");
    }

    @Test
    void aTcpHostWithoutACaIsAOneLineError() {
        Result r = kiln(List.of("-H", tcp), "ps");
        assertThat(r.exitCode()).as(r.toString()).isEqualTo(125);
        assertThat(r.err().lines().toList()).as(r.toString()).hasSize(1);
        assertThat(r.err()).contains("--tlscacert").contains(noDefaults.toString());
    }

    @Test
    void theTcpPortNeverAnswersPlainHttp() throws IOException {
        String hostPort = tcp.substring("tcp://".length());
        int colon = hostPort.lastIndexOf(':');
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1))),
                    5_000);
            s.setSoTimeout(10_000);
            OutputStream out = s.getOutputStream();
            out.write("GET /_ping HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            byte[] answer;
            try {
                answer = in.readNBytes(64);
            } catch (IOException reset) {
                answer = new byte[0];
            }
            assertThat(new String(answer, StandardCharsets.ISO_8859_1)).doesNotContain("HTTP/1.1 200");
        }
    }

    /**
     * Anyone who reaches the port can connect, certificate or not: a peer that sends nothing, or trickles a TLS
     * handshake a byte at a time, is dropped after the idle timeout instead of holding a connection for good (issue
     * 11, item 7).
     */
    @Test
    void aPeerThatNeverFinishesItsHandshakeIsDropped() throws Exception {
        String hostPort = tcp.substring("tcp://".length());
        int colon = hostPort.lastIndexOf(':');
        InetSocketAddress address = new InetSocketAddress(hostPort.substring(0, colon),
                Integer.parseInt(hostPort.substring(colon + 1)));
        try (Socket silent = new Socket(); Socket trickling = new Socket()) {
            long t0 = System.nanoTime();
            silent.connect(address, 5_000);
            trickling.connect(address, 5_000);
            OutputStream out = trickling.getOutputStream();
            out.write(new byte[] {0x16, 0x03, 0x01, 0x02, 0x00}); // a TLS handshake record of 512 bytes, to come
            Thread trickle = Thread.ofVirtual().start(() -> {
                try {
                    while (true) {
                        Thread.sleep(500);
                        out.write(1);
                    }
                } catch (IOException | InterruptedException e) {
                    // dropped by kilnd, or the test is over
                }
            });
            try {
                for (Socket s : List.of(silent, trickling)) {
                    s.setSoTimeout((IDLE_SECONDS + 10) * 1000);
                    try {
                        s.getInputStream().readAllBytes(); // at most a TLS alert, then the end
                    } catch (IOException reset) {
                        assertThat(reset).isNotInstanceOf(java.net.SocketTimeoutException.class);
                    }
                    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                    assertThat(ms).as("dropped after the idle timeout of %d s", IDLE_SECONDS)
                            .isBetween(IDLE_SECONDS * 1000L - 500, IDLE_SECONDS * 1000L + 5000);
                }
            } finally {
                trickle.interrupt();
            }
        }
    }

    @Test
    void theDaemonRefusesTcpWithoutTlsFiles() throws IOException {
        Path r = Files.createDirectories(tmp.resolve("refusing"));
        List<String> daemon = List.of("--root", r.resolve("root").toString(), "--run-root", r.resolve("run").toString(),
                "daemon", "--config", r.resolve("none.yaml").toString(), "--listen", "tcp://127.0.0.1:0");

        Result none = kilnRaw(daemon);
        assertThat(none.exitCode()).as(none.toString()).isEqualTo(125);
        assertThat(none.err().lines().toList()).as(none.toString()).hasSize(1);
        assertThat(none.err()).contains("--tlscacert CA.pem --tlscert CERT.pem --tlskey KEY.pem");

        List<String> keyMissing = new ArrayList<>(daemon);
        keyMissing.addAll(List.of("--tlscacert", pki.ca().toString(), "--tlscert", pki.cert("server").toString()));
        Result noKey = kilnRaw(keyMissing);
        assertThat(noKey.exitCode()).as(noKey.toString()).isEqualTo(125);
        assertThat(noKey.err().lines().toList()).as(noKey.toString()).hasSize(1);
        assertThat(noKey.err()).contains("--tlskey KEY.pem").doesNotContain("--tlscacert CA.pem");

        List<String> unreadable = new ArrayList<>(keyMissing);
        unreadable.addAll(List.of("--tlskey", r.resolve("no-such-key.pem").toString()));
        Result badKey = kilnRaw(unreadable);
        assertThat(badKey.exitCode()).as(badKey.toString()).isEqualTo(125);
        assertThat(badKey.err().lines().toList()).as(badKey.toString()).hasSize(1);
        assertThat(badKey.err()).contains("no-such-key.pem").contains("no such file");

        assertThat(r.resolve("run/kiln.sock")).doesNotExist();
    }

    @Test
    void theDockerCliWorksOverTheSameListener() throws IOException {
        Command.require("docker", "docker (the client at /usr/local/bin/docker)");
        Command.require("runc", "runc");
        importImage();
        Path config = Files.createDirectories(tmp.resolve("docker-config"));
        List<String> argv = List.of("docker", "--tlsverify", "--tlscacert", pki.ca().toString(),
                "--tlscert", pki.cert("client").toString(), "--tlskey", pki.key("client").toString(), "-H", tcp,
                "run", "--rm", IMAGE, "echo", "hi from docker");
        Result r = exec(argv, new byte[0], Map.of("DOCKER_CONFIG", config.toString()));
        assertThat(r.exitCode()).as(r.toString()).isZero();
        assertThat(r.out()).isEqualTo("hi from docker\n");

        List<String> noCert = List.of("docker", "--tlsverify", "--tlscacert", pki.ca().toString(), "-H", tcp, "ps");
        Result refused = exec(noCert, new byte[0], Map.of("DOCKER_CONFIG", config.toString(),
                "DOCKER_CERT_PATH", noDefaults.toString()));
        assertThat(refused.exitCode()).as(refused.toString()).isNotZero();
        assertThat(refused.err()).contains("certificate");
    }

    // ---- helpers ----

    private static synchronized void importImage() throws IOException {
        if (kiln(unix(), "image", "inspect", IMAGE).exitCode() == 0) {
            return;
        }
        Path rootfs = Files.createDirectories(tmp.resolve("rootfs"));
        Files.createDirectories(rootfs.resolve("bin"));
        Files.createDirectories(rootfs.resolve("etc"));
        Files.createDirectories(rootfs.resolve("tmp"));
        Files.copy(Path.of("/usr/bin/busybox"), rootfs.resolve("bin/busybox"));
        for (String applet : List.of("sh", "echo", "cat", "sleep", "true")) {
            Files.createSymbolicLink(rootfs.resolve("bin").resolve(applet), Path.of("busybox"));
        }
        Files.writeString(rootfs.resolve("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
        Files.writeString(rootfs.resolve("etc/group"), "root:x:0:\n");
        Path tar = tmp.resolve("rootfs.tar");
        Command.run("tar", "-C", rootfs.toString(), "-cf", tar.toString(), ".");
        // over TLS: the import streams a chunked request body through the TCP listener
        Result r = kiln(asClient("client"), "import", tar.toString(), IMAGE);
        assertThat(r.exitCode()).as(r.toString()).isZero();
    }

    private static List<String> asClient(String who) {
        return List.of("-H", tcp, "--tlsverify", "--tlscacert", pki.ca().toString(),
                "--tlscert", pki.cert(who).toString(), "--tlskey", pki.key(who).toString());
    }

    private static List<String> unix() {
        return List.of("-H", "unix://" + daemon.socket());
    }

    private static List<String> args(List<String> global, String... args) {
        List<String> all = new ArrayList<>(global);
        all.addAll(List.of(args));
        return all;
    }

    private static Result kiln(List<String> global, String... args) {
        return kilnWithStdin(new byte[0], args(global, args), Map.of());
    }

    private static Result kilnRaw(List<String> args) {
        return kilnWithStdin(new byte[0], args, Map.of());
    }

    /** The kiln CLI as its own process (its exit code and streams are the user's), with no default certificates. */
    private static Result kilnWithStdin(byte[] stdin, List<String> args, Map<String, String> env) {
        List<String> argv = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "-cp", System.getProperty("java.class.path"), "dev.kiln.cli.Main"));
        argv.addAll(args);
        return exec(argv, stdin, env);
    }

    private static Result exec(List<String> argv, byte[] stdin, Map<String, String> env) {
        try {
            Path out = Files.createTempFile(tmp, "out-", ".txt");
            Path err = Files.createTempFile(tmp, "err-", ".txt");
            Path in = Files.createTempFile(tmp, "in-", ".txt");
            Files.write(in, stdin);
            ProcessBuilder pb = new ProcessBuilder(argv).redirectInput(in.toFile()).redirectOutput(out.toFile())
                    .redirectError(err.toFile());
            pb.environment().remove("KILN_HOST");
            pb.environment().remove("DOCKER_HOST");
            pb.environment().put("HOME", noDefaults.toString());
            pb.environment().put("KILN_CERT_PATH", noDefaults.toString());
            pb.environment().putAll(env);
            Process p = pb.start();
            if (!p.waitFor(CLI_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                Command.destroyTree(p.toHandle());
                throw new AssertionError("timed out after " + CLI_TIMEOUT.toSeconds() + " s: " + String.join(" ", argv)
                        + "\nstderr: " + Files.readString(err));
            }
            return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }
}
