package dev.kiln.api.docker;

import dev.kiln.testing.VmTests;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Files into and out of a vm sandbox from the host (docs/volumes.md, "Copying files into and out of a VM"; Testcontainers'
 * {@code withCopyFileToContainer} for a VM is in {@link TestcontainersTest}: Testcontainers keeps one daemon per JVM),
 * {@code docker cp} in before the first boot and out after it (the guest's disk read through fuse2fs), {@code docker export} of a
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

    @BeforeAll
    static void start() throws Exception {
        VmTests.require();
        dev.kiln.testing.Command.require("fuse2fs", "fuse2fs");
        fixture.start(work, "kiln-vmcp-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);
    }

    @AfterAll
    static void stop() {
        fixture.close();
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
