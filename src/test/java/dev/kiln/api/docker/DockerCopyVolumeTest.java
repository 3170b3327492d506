package dev.kiln.api.docker;

import dev.kiln.testing.NetworkTests;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Docker's rule for {@code docker cp} and mounts (container isolation): a path under a named volume's or a bind
 * mount's destination is the volume's or the host directory's, whether the container runs or not — written there
 * (another container mounting the volume sees it), read from there, and refused for a read-only mount.
 */
class DockerCopyVolumeTest {

    @TempDir
    static Path work;
    static final DockerFixture fixture = new DockerFixture();
    static DockerCli docker;
    static String image;

    @BeforeAll
    static void start() throws Exception {
        NetworkTests.requireCniPlugins();
        fixture.start(work, "kiln-cpvol-");
        docker = fixture.docker;
        image = fixture.image;
        docker.ok("pull", image);
    }

    @AfterAll
    static void stop() {
        fixture.close();
    }

    @Test
    void copiesToAVolumesPathGoIntoTheVolume() throws Exception {
        Path in = Files.writeString(work.resolve("in.txt"), "into the volume\n");
        String created = docker.ok("create", "-v", "cpdata:/data", image, "cat", "/data/in.txt").strip();
        String running = docker.ok("run", "-d", "-v", "cpdata2:/srv/data", image, "sleep", "600").strip();
        try {
            docker.ok("cp", in.toString(), created + ":/data/");
            // another container that mounts the volume sees the file: it is in the volume, not under the mount point
            assertThat(docker.ok("run", "--rm", "-v", "cpdata:/v", image, "cat", "/v/in.txt"))
                    .isEqualTo("into the volume\n");
            assertThat(docker.ok("start", "-a", created)).isEqualTo("into the volume\n");

            // running: the container itself sees it at once, and it comes back out through the volume
            docker.ok("cp", in.toString(), running + ":/srv/data/");
            assertThat(docker.ok("exec", running, "cat", "/srv/data/in.txt")).isEqualTo("into the volume\n");
            docker.ok("exec", running, "sh", "-c", "echo from inside > /srv/data/made.txt");
            Path out = Files.createDirectories(work.resolve("out"));
            docker.ok("cp", running + ":/srv/data/made.txt", out.toString());
            assertThat(out.resolve("made.txt")).hasContent("from inside");
            docker.ok("cp", running + ":/srv/data", out.resolve("tree").toString());
            assertThat(out.resolve("tree/in.txt")).hasContent("into the volume");
        } finally {
            docker.run("rm", "-f", created, running);
        }
        Path site = Files.createDirectories(work.resolve("site"));
        String ro = docker.ok("create", "-v", site + ":/www:ro", "-v", "cpdata:/data:ro", image, "true").strip();
        try {
            DockerCli.Result refused = docker.run("cp", in.toString(), ro + ":/data/");
            assertThat(refused.exitCode()).isEqualTo(1);
            assertThat(refused.err()).contains("mounted volume is marked read-only");
            assertThat(docker.run("cp", in.toString(), ro + ":/www/").err()).contains("read-only");
            assertThat(site).isEmptyDirectory();
            Path conf = Files.createDirectories(work.resolve("conf"));
            String bound = docker.ok("create", "-v", conf + ":/etc/app", image, "true").strip();
            docker.ok("cp", in.toString(), bound + ":/etc/app/");
            assertThat(conf.resolve("in.txt")).as("a writable bind mount's host directory").hasContent("into the volume");
            docker.ok("rm", bound);
        } finally {
            docker.run("rm", "-f", ro);
            docker.run("volume", "rm", "cpdata", "cpdata2");
        }
    }
}
