package dev.kiln.api.docker;

import dev.kiln.testing.VmTests;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.images.builder.Transferable;
import org.testcontainers.utility.DockerImageName;
import org.testcontainers.utility.MountableFile;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Files into and out of a vm sandbox from the host (docs/volumes.md, "Copying files into and out of a VM"):
 * Testcontainers' {@code withCopyFileToContainer} (a PUT of the archive between create and start), {@code docker cp}
 * in before the first boot and out after it (the guest's disk read through fuse2fs), {@code docker export} of a
 * stopped VM holding what its guest wrote and not what it removed; copies into a VM that has run, or that runs, are
 * refused with one line. One VM boot per test (TCG: seconds).
 */
@Tag("slow")
class VmCopyTest {

    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;
    static String realHome;

    @BeforeAll
    static void start() throws Exception {
        VmTests.require();
        Assumptions.assumeTrue(System.getenv("DOCKER_HOST") == null,
                "DOCKER_HOST is set for this JVM: Testcontainers would use it instead of the test kilnd");
        Assumptions.assumeTrue("true".equals(System.getenv("TESTCONTAINERS_RYUK_DISABLED")),
                "TESTCONTAINERS_RYUK_DISABLED=true is needed (the pom sets it): Ryuk's image is on Docker Hub");
        dev.kiln.testing.Command.require("fuse2fs", "fuse2fs");
        fixture.start(work, "kiln-vmcp-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);
        Path home = Files.createDirectories(work.resolve("home"));
        Files.writeString(home.resolve(".testcontainers.properties"), "docker.host=unix://" + fixture.daemon.socket()
                + "\n" + "checks.disable=true\n"); // as TestcontainersTest: user.home pointed at a temporary one
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
    void testcontainersCopiesFilesIntoAVmBeforeItBoots() throws Exception {
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

    @Test
    void dockerCpInBeforeBootOutAfterAndExportOfTheStoppedVm() throws Exception {
        String id = docker.ok("create", "--isolation", "vm", image, "sh", "-c",
                "cat /data/in.txt && echo from the guest > /out.txt && rm /bin/ls && rm /data/gone.txt").strip();
        try {
            Path in = Files.createDirectories(work.resolve("in/data"));
            Files.writeString(in.resolve("in.txt"), "to the vm\n");
            Files.writeString(in.resolve("gone.txt"), "removed by the guest\n");
            docker.ok("cp", in.toString(), id + ":/");
            // read back before the boot: the seed under the image's tree
            Path before = Files.createDirectories(work.resolve("before"));
            docker.ok("cp", id + ":/data/in.txt", before.toString());
            assertThat(before.resolve("in.txt")).hasContent("to the vm");

            assertThat(docker.ok("start", "-a", id)).isEqualTo("to the vm\n");
            assertThat(docker.ok("inspect", "--format", "{{.State.ExitCode}}", id).strip()).isEqualTo("0");

            Path out = Files.createDirectories(work.resolve("out"));
            docker.ok("cp", id + ":/out.txt", out.toString());
            assertThat(out.resolve("out.txt")).hasContent("from the guest");
            DockerCli.Result gone = docker.run("cp", id + ":/data/gone.txt", out.toString());
            assertThat(gone.exitCode()).isEqualTo(1);
            assertThat(gone.err()).contains("Could not find the file /data/gone.txt");

            Path tar = work.resolve("vm.tar");
            docker.ok("export", "-o", tar.toString(), id);
            Map<String, String> entries = DockerLifecycleTest.entries(tar);
            assertThat(entries).containsEntry("out.txt", "from the guest\n").containsEntry("data/in.txt", "to the vm\n")
                    .containsKey("bin/sh").doesNotContainKey("bin/ls").doesNotContainKey("data/gone.txt");

            DockerCli.Result late = docker.run("cp", in.resolve("in.txt").toString(), id + ":/tmp/");
            assertThat(late.exitCode()).isEqualTo(1);
            assertThat(late.err().strip()).contains("its VM has run").doesNotContain("\n");
        } finally {
            docker.run("rm", "-f", id);
        }
        assertThat(Files.readString(Path.of("/proc/self/mountinfo"))).as("no fuse2fs or overlay view left")
                .doesNotContain(fixture.root.toString());
    }
}
