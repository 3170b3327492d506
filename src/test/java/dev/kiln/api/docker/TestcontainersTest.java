package dev.kiln.api.docker;

import dev.kiln.testing.NetworkTests;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.testcontainers.containers.Container;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.images.builder.Transferable;
import org.testcontainers.utility.DockerImageName;
import org.testcontainers.utility.MountableFile;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.Consumer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Testcontainers, unmodified, against kilnd's Docker face: a busybox web server started as a GenericContainer with an
 * exposed port and a log wait strategy, its page fetched through getHost()/getMappedPort(), an exec, a stop.
 *
 * <p>Testcontainers finds the daemon through {@code docker.host} in {@code ~/.testcontainers.properties} (or the
 * DOCKER_HOST environment variable, which a test cannot set for its own JVM): this class points {@code user.home} at
 * a temporary directory holding that file for the time of the test, so the user's real file is neither read nor
 * touched. The same file disables the startup checks ({@code checks.disable}: they would run an image from Docker
 * Hub). Ryuk, the reaper, is disabled too: its image comes from Docker Hub, and Testcontainers reads
 * TESTCONTAINERS_RYUK_DISABLED from the environment only, so the pom sets it for test JVMs; it sets
 * TESTCONTAINERS_HOST_OVERRIDE=localhost too, else Testcontainers, seeing /.dockerenv (these machines are containers),
 * would run alpine to find a gateway. There is no internet here, and no Docker Hub. The JVM's DOCKER_HOST, if set, would win over the file; the test refuses to run then.
 */
class TestcontainersTest {

    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;
    static String realHome;

    /** Prints a line before it serves, for the log wait strategy; the page is made first. */
    static final String[] WEB = {"sh", "-c", "mkdir -p /www && echo hello from kiln > /www/index.html && "
            + "echo serving && exec httpd -f -p 8080 -h /www"};

    @BeforeAll
    static void start() throws Exception {
        Assumptions.assumeTrue(System.getenv("DOCKER_HOST") == null,
                "DOCKER_HOST is set for this JVM: Testcontainers would use it instead of the test kilnd");
        Assumptions.assumeTrue("true".equals(System.getenv("TESTCONTAINERS_RYUK_DISABLED")),
                "TESTCONTAINERS_RYUK_DISABLED=true is needed (the pom sets it): Ryuk's image is on Docker Hub");
        Assumptions.assumeTrue(System.getenv("TESTCONTAINERS_HOST_OVERRIDE") != null || !Files.exists(Path.of(
                "/.dockerenv")), "TESTCONTAINERS_HOST_OVERRIDE is needed in a container (the pom sets it)");
        NetworkTests.requireCniPlugins();
        fixture.start(work, "kiln-tc-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);

        Path home = Files.createDirectories(work.resolve("home"));
        Files.writeString(home.resolve(".testcontainers.properties"), "docker.host=unix://" + fixture.daemon.socket()
                + "\n" + "checks.disable=true\n");
        realHome = System.getProperty("user.home");
        System.setProperty("user.home", home.toString());
    }

    @AfterAll
    static void stop() {
        if (realHome != null) {
            System.setProperty("user.home", realHome);
        }
        fixture.close();
    }

    @Test
    void genericContainerServesItsPageAndExecs() throws Exception {
        serveAndExec(c -> { });
    }

    @Test
    @Tag("slow")
    void genericContainerInAVm() throws Exception {
        // vm sandboxes get a network from another piece of work: until then kiln refuses their ports, and this
        // case skips with kiln's own words; it runs as soon as kiln accepts them
        DockerCli.Result probe = docker.run("create", "--runtime", "kiln-vm", "-p", "8080", image, "true");
        if (probe.exitCode() == 0) {
            docker.ok("rm", probe.out().strip());
        }
        Assumptions.assumeTrue(probe.exitCode() == 0, "kiln refuses published ports for vm sandboxes: "
                + probe.err().strip());
        serveAndExec(c -> c.withCreateContainerCmdModifier(cmd -> cmd.getHostConfig().withRuntime("kiln-vm")));
    }

    /**
     * withCopyFileToContainer/withCopyToContainer into a VM (a PUT of the archive between create and start, kept
     * until its first boot makes the disk), then copies into the running VM through its guest; reading out refused.
     */
    @Test
    @Tag("slow")
    void testcontainersCopiesFilesIntoAVmBeforeItBoots() throws Exception {
        dev.kiln.testing.VmTests.require();
        Path conf = Files.writeString(work.resolve("app.conf"), "greeting=from the host\n");
        try (GenericContainer<?> app = new GenericContainer<>(DockerImageName.parse(image))) {
            app.withCreateContainerCmdModifier(cmd -> cmd.getHostConfig().withRuntime("kiln-vm"))
                    .withCopyFileToContainer(MountableFile.forHostPath(conf), "/etc/app/app.conf")
                    .withCopyToContainer(Transferable.of("#!/bin/sh\necho script ran\n", 0755), "/usr/local/bin/hi")
                    .withCommand("sh", "-c", "cat /etc/app/app.conf; hi; uname -r; echo ready; exec sleep 600")
                    .waitingFor(Wait.forLogMessage("ready\\n", 1).withStartupTimeout(Duration.ofMinutes(3)));
            app.start();
            String logs = app.getLogs();
            assertThat(logs).contains("greeting=from the host").contains("script ran");
            assertThat(logs).as("ran on the guest kernel, not the host's")
                    .doesNotContain(System.getProperty("os.version"));
            // a running VM's disk is its guest's: the copy goes through the guest (its tar), never behind its back
            app.copyFileToContainer(Transferable.of("late\n"), "/tmp/late.txt");
            org.testcontainers.containers.Container.ExecResult late = app.execInContainer("cat", "/tmp/late.txt");
            assertThat(late.getStdout()).as(late.getStderr()).isEqualTo("late\n");
            assertThat(app.execInContainer("ls", "-ln", "/tmp/late.txt").getStdout()).matches("\\S+\\s+\\d+\\s+0\\s+0\\s.*\\s*");
            // the docker CLI asks the path's stat first (HEAD, answered by the guest's stat), then PUTs
            docker.ok("cp", conf.toString(), app.getContainerId() + ":/tmp/");
            assertThat(app.execInContainer("cat", "/tmp/app.conf").getStdout()).isEqualTo("greeting=from the host\n");
            // reading a running VM's files from the host is refused with the reason
            assertThatThrownBy(() -> app.copyFileFromContainer("/tmp/late.txt", s -> new String(s.readAllBytes())))
                    .hasStackTraceContaining("not supported for a running vm sandbox");
        }
    }

    /**
     * Testcontainers' compose module with the local docker-compose (Debian's 1.29; its containerised compose would need
     * Docker Hub): two services on the project's network, one reaching the other by its service name, a log wait,
     * the service's container found and exec'd; stop takes the project down.
     */
    @Test
    void composeModuleBringsUpTwoServicesThatFindEachOther() throws Exception {
        dev.kiln.testing.Command.require("docker-compose", "docker-compose");
        Path file = Files.writeString(work.resolve("docker-compose.yml"), """
                version: "2.4"
                services:
                  web:
                    image: %s
                    command: ["sh", "-c", "mkdir -p /www && echo hello from web > /www/index.html && exec httpd -f -p 80 -h /www"]
                  client:
                    image: %s
                    depends_on: [web]
                    command: ["sh", "-c", "until wget -q -O - http://web/ > /tmp/page; do sleep 0.2; done; cat /tmp/page; exec sleep 600"]
                """.formatted(image, image));
        try (var compose = new org.testcontainers.containers.DockerComposeContainer<>(file.toFile())
                .withPull(false)
                .waitingFor("client", Wait.forLogMessage("hello from web\\n", 1)
                        .withStartupTimeout(Duration.ofMinutes(2)))) {
            compose.start();
            var client = compose.getContainerByServiceName("client").orElseThrow();
            Container.ExecResult page = client.execInContainer("cat", "/tmp/page");
            assertThat(page.getStdout()).as(page.getStderr()).isEqualTo("hello from web\n");
        }
        assertThat(docker.ok("ps", "-a", "--filter", "label=com.docker.compose.service", "-q").strip())
                .as("the project's containers are gone").isEmpty();
    }

    /** withFileSystemBind (HostConfig.Binds, read-only) serves a host directory; withTmpFs (HostConfig.Tmpfs). */
    @Test
    void genericContainerWithAFileSystemBindAndATmpfs() throws Exception {
        Path site = Files.createDirectories(work.resolve("site"));
        Files.writeString(site.resolve("index.html"), "from the host\n");
        try (GenericContainer<?> web = new GenericContainer<>(DockerImageName.parse(image))) {
            web.withCommand("sh", "-c", "echo serving && exec httpd -f -p 8080 -h /www").withExposedPorts(8080)
                    .withFileSystemBind(site.toString(), "/www", org.testcontainers.containers.BindMode.READ_ONLY)
                    .withTmpFs(java.util.Map.of("/scratch", "rw,size=1m"))
                    .waitingFor(Wait.forLogMessage("serving\\n", 1).withStartupTimeout(Duration.ofMinutes(2)));
            web.start();
            String url = "http://" + web.getHost() + ":" + web.getMappedPort(8080) + "/";
            assertThat(DockerPortsAndCopyTest.get(url)).isEqualTo("from the host\n");
            Files.writeString(site.resolve("index.html"), "changed on the host\n");
            assertThat(DockerPortsAndCopyTest.get(url)).isEqualTo("changed on the host\n");

            Container.ExecResult ro = web.execInContainer("sh", "-c", "echo x > /www/index.html");
            assertThat(ro.getExitCode()).isNotZero();
            assertThat(ro.getStderr()).contains("Read-only file system");
            Container.ExecResult mounts = web.execInContainer("cat", "/proc/mounts");
            assertThat(mounts.getStdout()).contains(" /scratch tmpfs ").contains("size=1024k");
        }
        assertThat(Files.readString(site.resolve("index.html"))).isEqualTo("changed on the host\n");
    }

    private static void serveAndExec(Consumer<GenericContainer<?>> customize) throws Exception {
        try (GenericContainer<?> web = new GenericContainer<>(DockerImageName.parse(image))) {
            web.withCommand(WEB).withExposedPorts(8080)
                    .waitingFor(Wait.forLogMessage("serving\\n", 1).withStartupTimeout(Duration.ofMinutes(2)));
            customize.accept(web);
            web.start();

            String url = "http://" + web.getHost() + ":" + web.getMappedPort(8080) + "/";
            assertThat(DockerPortsAndCopyTest.get(url)).isEqualTo("hello from kiln\n");

            Container.ExecResult hostname = web.execInContainer("cat", "/etc/hostname");
            assertThat(hostname.getExitCode()).as(hostname.getStderr()).isZero();
            assertThat(hostname.getStdout().strip()).isEqualTo(web.getContainerId().substring(0, 12));

            String id = web.getContainerId();
            web.stop();
            assertThat(docker.ok("ps", "-aq", "--no-trunc")).doesNotContain(id);
        }
    }
}
