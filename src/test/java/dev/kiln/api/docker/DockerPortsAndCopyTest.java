package dev.kiln.api.docker;

import dev.kiln.testing.Command;
import dev.kiln.testing.NetworkTests;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The docker CLI on what issue 6 added to kiln's Docker face: published ports ({@code -p}, {@code docker port},
 * inspect's NetworkSettings, the ports column of {@code docker ps}), {@code docker cp} both ways with hostile
 * sandboxes (symlinks to host paths, {@code ../} archives), and the daemon's errors with docker's exit codes.
 */
class DockerPortsAndCopyTest {

    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    /** A busybox web server on 8080, once its page exists. */
    static final String[] HTTPD = {"sh", "-c", "mkdir -p /www && echo hello from kiln > /www/index.html && "
            + "exec httpd -f -p 8080 -h /www"};

    @BeforeAll
    static void start() throws Exception {
        Command.require("iptables-save", "iptables");
        NetworkTests.requireCniPlugins();
        fixture.start(work, "kiln-dpc-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);
    }

    @AfterAll
    static void stop() {
        fixture.close();
    }

    @Test
    void publishedPortAnswersAndEveryViewShowsIt() throws Exception {
        int hostPort = freePort();
        String id = docker.ok(args("run", "-d", "-p", hostPort + ":8080", image)).strip();
        try {
            assertThat(get("http://127.0.0.1:" + hostPort + "/")).isEqualTo("hello from kiln\n");
            assertThat(docker.ok("port", id)).isEqualTo("8080/tcp -> 0.0.0.0:" + hostPort + "\n");
            assertThat(docker.ok("port", id, "8080/tcp")).isEqualTo("0.0.0.0:" + hostPort + "\n");
            String ip = docker.ok("inspect", "--format", "{{.NetworkSettings.IPAddress}}", id).strip();
            assertThat(ip).matches("10\\.\\d+\\.\\d+\\.\\d+");
            assertThat(docker.ok("inspect", "--format", "{{.HostConfig.NetworkMode}} "
                    + "{{(index .NetworkSettings.Networks \"bridge\").IPAddress}} {{.NetworkSettings.IPPrefixLen}} "
                    + "{{json .HostConfig.PortBindings}}", id).strip())
                    .isEqualTo("bridge " + ip + " 24 {\"8080/tcp\":[{\"HostIp\":\"\",\"HostPort\":\""
                            + hostPort + "\"}]}");
            assertThat(get("http://" + ip + ":8080/")).isEqualTo("hello from kiln\n");
            assertThat(docker.ok("ps", "--filter", "id=" + id, "--format", "{{.Ports}}").strip())
                    .isEqualTo("0.0.0.0:" + hostPort + "->8080/tcp");

            // a fixed port another container holds: docker's daemon error, exit 125
            DockerCli.Result taken = docker.run(args("run", "-d", "-p", hostPort + ":8080", image));
            assertThat(taken.exitCode()).isEqualTo(125);
            assertThat(taken.err()).contains("port is already allocated");
        } finally {
            docker.ok("rm", "-f", id);
        }

        // -p 8080: any free port; --network none with -p is refused, never silently unpublished
        String any = docker.ok(args("run", "-d", "-p", "8080", image)).strip();
        try {
            String published = docker.ok("port", any, "8080").strip();
            assertThat(published).matches("0\\.0\\.0\\.0:\\d+");
            assertThat(get("http://127.0.0.1:" + published.substring(8) + "/")).isEqualTo("hello from kiln\n");
        } finally {
            docker.ok("rm", "-f", any);
        }
        DockerCli.Result none = docker.run("run", "--rm", "--network", "none", "-p", "8080", image, "true");
        assertThat(none.exitCode()).isEqualTo(125);
        assertThat(none.err()).contains("-p needs a network");
    }

    @Test
    void dnsAndExtraHostsReachTheContainer() {
        String out = docker.ok("run", "--rm", "--dns", "192.0.2.53", "--dns-search", "example.test",
                "--add-host", "db.test:192.0.2.7", image, "sh", "-c", "cat /etc/resolv.conf /etc/hosts");
        assertThat(out).contains("nameserver 192.0.2.53").contains("search example.test").contains("192.0.2.7")
                .contains("db.test");
    }

    @Test
    void copiesInAndOut() throws Exception {
        String id = docker.ok("run", "-d", image, "sleep", "300").strip();
        try {
            Path local = Files.writeString(work.resolve("note.txt"), "copied in\n");
            docker.ok("cp", local.toString(), id + ":/tmp/");
            assertThat(docker.ok("exec", id, "cat", "/tmp/note.txt")).isEqualTo("copied in\n");
            docker.ok("cp", local.toString(), id + ":/tmp/renamed.txt");
            assertThat(docker.ok("exec", id, "ls", "-ln", "/tmp/renamed.txt")).contains(" 0 ").contains(" 0 ");

            Path dir = Files.createDirectories(work.resolve("tree/sub"));
            Files.writeString(dir.resolve("leaf"), "leaf\n");
            docker.ok("cp", work.resolve("tree").toString(), id + ":/tmp");
            assertThat(docker.ok("exec", id, "cat", "/tmp/tree/sub/leaf")).isEqualTo("leaf\n");
            docker.ok("cp", work.resolve("tree").toString(), id + ":/newdir"); // a new name: the tree's contents
            assertThat(docker.ok("exec", id, "cat", "/newdir/sub/leaf")).isEqualTo("leaf\n");

            Path out = Files.createDirectories(work.resolve("out"));
            docker.ok("cp", id + ":/etc/passwd", out.toString());
            assertThat(out.resolve("passwd")).content().contains("root:x:0:0");
            docker.ok("exec", id, "sh", "-c", "mkdir -p /data/d && echo made inside > /data/d/f");
            docker.ok("cp", id + ":/data", out.toString());
            assertThat(out.resolve("data/d/f")).hasContent("made inside");

            // a tar on stdout and stdin, as `docker cp ... -` speaks
            DockerCli.Result tar = docker.run("cp", id + ":/data/d/f", "-");
            assertThat(tar.exitCode()).isZero();
            assertThat(tar.out()).contains("made inside");

            // HEAD (stat) of a missing path: docker's "Could not find the file"
            DockerCli.Result missing = docker.run("cp", id + ":/no/such", out.toString());
            assertThat(missing.exitCode()).isEqualTo(1);
            assertThat(missing.err()).contains("Could not find the file /no/such");
        } finally {
            docker.ok("rm", "-f", id);
        }
    }

    @Test
    void kilnCpSpeaksDockersSyntaxOverTheNativeApi() throws Exception {
        String id = docker.ok("run", "-d", image, "sleep", "300").strip();
        try {
            Path local = Files.writeString(work.resolve("kiln-cp.txt"), "via kiln\n");
            assertThat(kiln("cp", local.toString(), id + ":/tmp/")).isZero();
            assertThat(kiln("cp", local.toString(), id + ":/tmp/named.txt")).isZero();
            assertThat(docker.ok("exec", id, "cat", "/tmp/kiln-cp.txt", "/tmp/named.txt"))
                    .isEqualTo("via kiln\nvia kiln\n");
            docker.ok("exec", id, "sh", "-c", "mkdir -p /d/e && echo deep > /d/e/f && ln -s /etc/shadow /d/s");
            Path out = Files.createDirectories(work.resolve("kiln-out"));
            assertThat(kiln("cp", id + ":/d", out.toString())).isZero();
            assertThat(out.resolve("d/e/f")).hasContent("deep");
            assertThat(Files.readSymbolicLink(out.resolve("d/s"))).isEqualTo(Path.of("/etc/shadow"));
            Files.writeString(out.resolve("d/mine"), "kept\n"); // copying into a directory merges, as tar does
            assertThat(kiln("cp", id + ":/d", out.toString())).isZero();
            assertThat(out.resolve("d/mine")).hasContent("kept");
            assertThat(kiln("cp", id + ":/d/e/f", out.resolve("renamed").toString())).isZero();
            assertThat(out.resolve("renamed")).hasContent("deep");
            assertThat(kiln("cp", id + ":/nope", out.toString())).isEqualTo(125);
            assertThat(kiln("cp", local.toString(), "nope:/tmp")).isEqualTo(125);
        } finally {
            docker.ok("rm", "-f", id);
        }
    }

    @Test
    void whatASandboxHandsKilnCpCannotTakeOverTheHost() throws Exception {
        String id = docker.ok("run", "-d", image, "sleep", "300").strip();
        try {
            // a setuid root file, a world-writable top directory, and a top-level symlink to the host's root
            docker.ok("exec", id, "sh", "-c", "mkdir -p /evil && echo x > /evil/suid && chmod 4755 /evil/suid"
                    + " && chmod 0777 /evil && ln -s / /etc-link");
            Path out = Files.createDirectories(work.resolve("hostile-out"));
            assertThat(kiln("cp", id + ":/evil", out.toString())).isZero();
            var mode = Files.getPosixFilePermissions(out.resolve("evil/suid"));
            assertThat((int) Files.getAttribute(out.resolve("evil/suid"), "unix:mode") & 06000)
                    .as("setuid/setgid dropped on the host (" + mode + ")").isZero();

            Path dest = Files.createDirectories(work.resolve("keeps-its-mode"));
            Files.setPosixFilePermissions(dest, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-x---"));
            assertThat(kiln("cp", id + ":/evil/.", dest.toString())).isZero();
            assertThat(dest.resolve("suid")).exists();
            assertThat(java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(dest)))
                    .as("the destination keeps its own mode").isEqualTo("rwxr-x---");

            // the first copy plants a host symlink to /; a second copy must not write through it
            Path planted = work.resolve("planted");
            assertThat(kiln("cp", id + ":/etc-link", planted.toString())).isZero();
            assertThat(Files.readSymbolicLink(planted)).isEqualTo(Path.of("/"));
            docker.ok("exec", id, "sh", "-c", "rm /etc-link && mkdir /etc-link && echo pwned > /etc-link/kiln-cp-pwn");
            assertThat(kiln("cp", id + ":/etc-link", planted.toString())).isEqualTo(125);
            assertThat(Path.of("/kiln-cp-pwn")).doesNotExist();
        } finally {
            docker.ok("rm", "-f", id);
        }
    }

    /** kiln's own CLI against the same daemon; returns its exit code. */
    private static int kiln(String... args) {
        String[] all = new String[args.length + 2];
        all[0] = "--host";
        all[1] = fixture.daemon.host();
        System.arraycopy(args, 0, all, 2, args.length);
        return dev.kiln.cli.Main.run(all, new java.io.PrintWriter(System.out, true),
                new java.io.PrintWriter(System.err, true));
    }

    @Test
    void copyFromAnExitedContainerAndIntoACreatedOne() throws Exception {
        String exited = docker.ok("run", "-d", image, "sh", "-c", "echo left behind > /tmp/result").strip();
        docker.ok("wait", exited);
        Path out = Files.createDirectories(work.resolve("exited"));
        docker.ok("cp", exited + ":/tmp/result", out.toString());
        assertThat(out.resolve("result")).hasContent("left behind");
        docker.ok("rm", exited);

        String created = docker.ok("create", image, "cat", "/tmp/config").strip();
        docker.ok("cp", Files.writeString(work.resolve("config"), "configured\n").toString(), created + ":/tmp/");
        assertThat(docker.ok("start", "-a", created)).isEqualTo("configured\n");
        docker.ok("rm", created);
    }

    @Test
    void symlinksInTheContainerNeverReachTheHost() throws Exception {
        Path secret = Files.writeString(Files.createTempFile("kiln-shadow-", ""), "HOST SECRET\n");
        Path hostDir = Files.createTempDirectory("kiln-hostdir-");
        String id = docker.ok("run", "-d", image, "sleep", "300").strip();
        try {
            docker.ok("exec", id, "sh", "-c", "ln -s " + secret + " /tmp/abs && ln -s ../../../../../../.." + secret
                    + " /tmp/rel && ln -s / /tmp/up && ln -s " + hostDir + " /tmp/dst");
            Path out = Files.createDirectories(work.resolve("leak"));
            // the symlink itself comes out (as docker does), not what it points to on the host
            docker.ok("cp", id + ":/tmp/abs", out.toString());
            assertThat(Files.isSymbolicLink(out.resolve("abs"))).isTrue();
            // followed (-L), or through parent symlinks, it resolves inside the container, where there is no such file
            for (String path : new String[] {"/tmp/abs", "/tmp/rel"}) {
                DockerCli.Result r = docker.run("cp", "-L", id + ":" + path, out.resolve("followed").toString());
                assertThat(r.exitCode()).as(path).isEqualTo(1);
                assertThat(r.err()).contains("Could not find the file");
            }
            DockerCli.Result up = docker.run("cp", id + ":/tmp/up/../.." + secret, out.resolve("up").toString());
            assertThat(up.exitCode()).isEqualTo(1);
            assertThat(Files.exists(out.resolve("followed")) || Files.exists(out.resolve("up"))).isFalse();

            // writing through a symlink to a host directory lands inside the container, never on the host: the
            // CLI follows /tmp/dst to its target as the container resolves it, which does not exist there, so the
            // file takes that name inside the container
            Path local = Files.writeString(work.resolve("payload"), "payload\n");
            docker.ok("cp", local.toString(), id + ":/tmp/dst/");
            assertThat(hostDir).isEmptyDirectory();
            assertThat(docker.ok("exec", id, "cat", hostDir.toString())).isEqualTo("payload\n");
            // and into a directory reached through "/" and "..": still the container's
            docker.ok("exec", id, "sh", "-c", "mkdir -p /srv/in");
            docker.ok("cp", local.toString(), id + ":/tmp/up/../../../srv/in/");
            assertThat(docker.ok("exec", id, "cat", "/srv/in/payload")).isEqualTo("payload\n");
        } finally {
            docker.ok("rm", "-f", id);
            Files.delete(secret);
            Files.deleteIfExists(hostDir.resolve("payload"));
            Files.delete(hostDir);
        }
    }

    @Test
    void archivesThatClimbOutAreRefused() throws Exception {
        String id = docker.ok("run", "-d", image, "sleep", "300").strip();
        try {
            for (String name : new String[] {"../evil", "a/../../evil"}) {
                DockerCli.Result r = docker.runBytes(tar(name, "evil\n"), "cp", "-", id + ":/tmp");
                assertThat(r.exitCode()).as(name).isEqualTo(1);
                assertThat(r.err()).as(name).contains("climbs out of the destination directory");
            }
            assertThat(docker.run("exec", id, "ls", "/evil").exitCode()).isNotZero();
            DockerCli.Result ok = docker.runBytes(tar("./fine", "fine\n"), "cp", "-", id + ":/tmp");
            assertThat(ok.exitCode()).as(ok.err()).isZero();
            assertThat(docker.ok("exec", id, "cat", "/tmp/fine")).isEqualTo("fine\n");
        } finally {
            docker.ok("rm", "-f", id);
        }
    }

    @Test
    void gvisorCopiesWhileItsSandboxIsNotRunning() throws Exception {
        Command.require("runsc", "runsc");
        String id = docker.ok("create", "--runtime", "runsc", image, "sh", "-c",
                "cat /in.txt && echo from gvisor > /out.txt").strip();
        try {
            docker.ok("cp", Files.writeString(work.resolve("in.txt"), "to gvisor\n").toString(), id + ":/");
            assertThat(docker.ok("start", "-a", id)).isEqualTo("to gvisor\n");
            Path out = Files.createDirectories(work.resolve("gvisor"));
            docker.ok("cp", id + ":/out.txt", out.toString());
            assertThat(out.resolve("out.txt")).hasContent("from gvisor");
        } finally {
            docker.ok("rm", "-f", id);
        }
        // running, the Sentry owns the files (cached, /tmp in its memory): refused, never half-right
        String running = docker.ok("run", "-d", "--runtime", "runsc", image, "sleep", "300").strip();
        try {
            DockerCli.Result r = docker.run("cp", running + ":/etc/passwd", work.resolve("gv-out").toString());
            assertThat(r.exitCode()).isEqualTo(1);
            assertThat(r.err()).contains("not supported for a running gvisor sandbox");
            // a copy in goes through the sandbox's own tar, so the Sentry sees it
            docker.ok("cp", Files.writeString(work.resolve("gv-in.txt"), "live\n").toString(), running + ":/tmp/");
            assertThat(docker.ok("exec", running, "cat", "/tmp/gv-in.txt")).isEqualTo("live\n");
        } finally {
            docker.ok("rm", "-f", running);
        }
    }

    /** A created vm (no boot): copies go to the seed its first start puts on its disk (VmCopyTest boots one). */
    @Test
    void vmSandboxesTakeCopiesBeforeTheirFirstBoot() throws Exception {
        String id = docker.ok("create", "--isolation", "vm", image, "true").strip();
        try {
            docker.ok("cp", Files.writeString(work.resolve("vm.txt"), "x").toString(), id + ":/tmp/vm.txt");
            Path out = Files.createDirectories(work.resolve("vm-out"));
            docker.ok("cp", id + ":/tmp/vm.txt", out.toString());
            assertThat(out.resolve("vm.txt")).hasContent("x");
            docker.ok("cp", id + ":/etc/passwd", out.toString());
            assertThat(out.resolve("passwd")).content().contains("root:");
        } finally {
            docker.ok("rm", "-f", id);
        }
    }

    @Test
    void daemonErrorsKeepDockersExitCodes() {
        DockerCli.Result unknownImage = docker.run("run", "--rm", fixture.registry.ref("no-such-image", "latest"), "true");
        assertThat(unknownImage.exitCode()).isEqualTo(125);
        DockerCli.Result unknownContainer = docker.run("cp", "nope:/etc/passwd", work.toString());
        assertThat(unknownContainer.exitCode()).isEqualTo(1);
        assertThat(unknownContainer.err()).contains("No such container: nope");
        assertThat(docker.run("exec", "nope", "true").exitCode()).isEqualTo(1);

        DockerCli.Result conflict = fixture.runUnderATakenName();
        assertThat(conflict.exitCode()).isEqualTo(125);
        assertThat(conflict.err()).contains("is already in use");
        DockerCli.Result range = docker.run("run", "--rm", "-p", "9000-9001:8080", image, "true");
        assertThat(range.exitCode()).isEqualTo(125);
        assertThat(range.err()).contains("kiln does not support");
    }

    private static String[] args(String... head) {
        String[] all = new String[head.length + HTTPD.length];
        System.arraycopy(head, 0, all, 0, head.length);
        System.arraycopy(HTTPD, 0, all, head.length, HTTPD.length);
        return all;
    }

    /** The page, retried while the server starts (bounded). */
    static String get(String url) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (true) {
            try {
                HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(url))
                        .timeout(Duration.ofSeconds(3)).build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) {
                    return r.body();
                }
            } catch (IOException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no page at " + url);
            }
            Thread.sleep(100);
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static byte[] tar(String name, String content) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(bytes)) {
            byte[] data = content.getBytes(StandardCharsets.UTF_8);
            TarArchiveEntry e = new TarArchiveEntry(name, true); // as written, "../" kept
            e.setSize(data.length);
            e.setMode(0100644);
            tar.putArchiveEntry(e);
            tar.write(data);
            tar.closeArchiveEntry();
        }
        return bytes.toByteArray();
    }
}
