package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testing.Command;
import dev.kiln.testing.WrittenLine;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Bind mounts, named and anonymous volumes and tmpfs as a user drives them with the CLI, one contract for the
 * container and gvisor isolations (the vm isolation's shares are {@link VmVolumeTest}'s): data outlives the sandbox,
 * {@code :ro} refuses writes, host changes show live, and bad input is one line with nothing left behind.
 */
class VolumeCliTest {

    @TempDir
    static Path root;
    @TempDir
    Path host;
    static KilnRun kiln;
    static final String IMAGE = "kiln-test/busybox-seeded:1";

    @BeforeAll
    static void image() throws Exception {
        Command.require("runc", "runc");
        kiln = new KilnRun(root);
        kiln.importBusybox(IMAGE, Map.of("srv/seed/hello.txt", "seeded\n"));
    }

    @AfterAll
    static void stop() {
        kiln.removeSandboxes();
        kiln.kiln("volume", "prune", "-a");
        kiln.close();
    }

    static void requireRuntime(String isolation) {
        if (isolation.equals("gvisor")) {
            Command.require("runsc", "runsc");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor"})
    void namedVolumeOutlivesItsSandboxAndIsSeenByTheNext(String isolation) throws Exception {
        requireRuntime(isolation);
        String vol = "data-" + isolation;
        kiln.ok("run", "--rm", "--isolation", isolation, "-v", vol + ":/data", IMAGE, "sh", "-c",
                "echo kept > /data/file");
        assertThat(kiln.ok("volume", "ls", "-q").out().lines()).contains(vol);
        assertThat(kiln.ok("run", "--rm", "--isolation", isolation, "-v", vol + ":/data", IMAGE, "cat",
                "/data/file").out()).isEqualTo("kept\n");
        JsonNode inspect = new ObjectMapper().readTree(kiln.ok("volume", "inspect", vol).out()).get(0);
        Path data = Path.of(inspect.path("Mountpoint").asText());
        assertThat(data).startsWith(kiln.store());
        assertThat(Files.readString(data.resolve("file"))).isEqualTo("kept\n");
        kiln.ok("volume", "rm", vol);
        assertThat(data).doesNotExist();
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor"})
    void readOnlyBindRefusesWrites(String isolation) throws Exception {
        requireRuntime(isolation);
        Files.writeString(host.resolve("config"), "setting=1\n");
        KilnRun.Result r = kiln.kiln("run", "--rm", "--isolation", isolation, "-v", host + ":/etc/app:ro", IMAGE,
                "sh", "-c", "cat /etc/app/config; echo no > /etc/app/written");
        assertThat(r.exitCode()).isNotZero();
        assertThat(r.out()).isEqualTo("setting=1\n");
        assertThat(r.err()).contains("Read-only file system");
        assertThat(host.resolve("written")).doesNotExist();

        KilnRun.Result m = kiln.kiln("run", "--rm", "--isolation", isolation, "--mount",
                "type=volume,src=ro-" + isolation + ",dst=/data,readonly", IMAGE, "sh", "-c", "touch /data/x");
        assertThat(m.exitCode()).isNotZero();
        assertThat(m.err()).contains("Read-only file system");
        kiln.ok("volume", "rm", "ro-" + isolation);
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor"})
    void bindMountShowsHostChangesLiveAndWritesReachTheHost(String isolation) throws Exception {
        requireRuntime(isolation);
        String name = "live-" + isolation;
        kiln.ok("run", "-d", "--name", name, "--isolation", isolation, "--mount",
                "type=bind,source=" + host + ",target=/work", IMAGE, "sh", "-c",
                "echo from-sandbox > /work/out; while [ ! -f /work/go ]; do sleep 0.1; done; cat /work/go; "
                        + "sleep 1000");
        await(() -> WrittenLine.in(host.resolve("out")));
        assertThat(Files.readString(host.resolve("out"))).isEqualTo("from-sandbox\n");
        Files.writeString(host.resolve("go"), "from-host\n");
        await(() -> kiln.ok("logs", name).out().contains("from-host"));

        JsonNode inspect = new ObjectMapper().readTree(kiln.ok("inspect", name).out()).get(0);
        assertThat(inspect.path("Mounts").toString()).contains("\"Type\":\"bind\"")
                .contains("\"Destination\":\"/work\"").contains("\"Source\":\"" + host.toRealPath() + "\"");
        kiln.ok("rm", "-f", name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor"})
    void tmpfsIsMemoryOfTheSizeAsked(String isolation) {
        requireRuntime(isolation);
        KilnRun.Result r = kiln.kiln("run", "--rm", "--isolation", isolation, "--tmpfs", "/scratch:size=1m,mode=1777",
                "--mount", "type=tmpfs,dst=/other,tmpfs-size=65536", IMAGE, "sh", "-c",
                "grep ' /scratch ' /proc/mounts; grep ' /other ' /proc/mounts; "
                        + "busybox dd if=/dev/zero of=/scratch/big bs=1024 count=2048");
        assertThat(r.exitCode()).isNotZero(); // 2 MiB do not fit in 1 MiB
        assertThat(r.out()).contains(" /scratch tmpfs ").contains(" /other tmpfs ");
        assertThat(r.err()).contains("No space left on device");
    }

    @ParameterizedTest
    @ValueSource(strings = {"container", "gvisor"})
    void newVolumeGetsTheImageContentAndAnonymousOnesGoWithRmV(String isolation) throws Exception {
        requireRuntime(isolation);
        String name = "anon-" + isolation;
        kiln.ok("create", "--name", name, "--isolation", isolation, "-v", "/srv/seed", "-v",
                "seed-" + isolation + ":/srv/seed2", IMAGE, "cat", "/srv/seed/hello.txt");
        JsonNode inspect = new ObjectMapper().readTree(kiln.ok("inspect", name).out()).get(0);
        String anonymous = inspect.at("/Mounts/0/Name").asText();
        assertThat(anonymous).matches("[0-9a-f]{64}");
        assertThat(kiln.ok("start", "-a", name).out()).isEqualTo("seeded\n"); // copied into the new volume
        assertThat(kiln.ok("volume", "ls", "-q").out().lines()).contains(anonymous, "seed-" + isolation);
        kiln.ok("rm", "-v", name);
        assertThat(kiln.ok("volume", "ls", "-q").out().lines()).doesNotContain(anonymous)
                .contains("seed-" + isolation); // named volumes stay
        kiln.ok("volume", "rm", "seed-" + isolation);
    }

    @Test
    void badInputIsOneLineAndLeavesNothing() throws Exception {
        String sandboxesBefore = kiln.ok("ps", "-a", "-q").out();
        String volumesBefore = kiln.ok("volume", "ls", "-q").out();
        Path missing = host.resolve("missing");
        expectRefused(kiln.kiln("run", "--rm", "--mount", "type=bind,src=" + missing + ",dst=/x", IMAGE, "true"),
                "bind source path does not exist");
        assertThat(missing).doesNotExist();
        expectRefused(kiln.kiln("run", "--rm", "--mount", "type=bind,src=relative/dir,dst=/x", IMAGE, "true"),
                "must be an absolute path");
        expectRefused(kiln.kiln("run", "--rm", "-v", "./relative:/x", IMAGE, "true"), "invalid volume name");
        expectRefused(kiln.kiln("run", "--rm", "-v", host + ":/", IMAGE, "true"), "cannot be replaced by a mount");
        expectRefused(kiln.kiln("run", "--rm", "-v", host + ":/proc", IMAGE, "true"), "/proc");
        expectRefused(kiln.kiln("run", "--rm", "--tmpfs", "/t:size=big", IMAGE, "true"), "invalid tmpfs option");
        expectRefused(kiln.kiln("run", "--rm", "--mount", "type=tmpfs,dst=/t,tmpfs-mode=rwx", IMAGE, "true"),
                "invalid tmpfs-mode");
        expectRefused(kiln.kiln("run", "--rm", "-v", host + ":/x:rx", IMAGE, "true"), "invalid mode");
        expectRefused(kiln.kiln("volume", "create", "../escape"), "invalid volume name");
        expectRefused(kiln.kiln("volume", "create", "a/b"), "invalid volume name");

        kiln.ok("run", "-d", "--name", "holder", "-v", "busy:/data", IMAGE, "sleep", "1000");
        expectRefused(kiln.kiln("volume", "rm", "busy"), "volume busy is in use by sandbox holder");
        kiln.ok("rm", "-f", "holder");
        kiln.ok("volume", "rm", "busy");

        assertThat(kiln.ok("ps", "-a", "-q").out()).isEqualTo(sandboxesBefore);
        assertThat(kiln.ok("volume", "ls", "-q").out()).isEqualTo(volumesBefore);
    }

    private static void expectRefused(KilnRun.Result r, String message) {
        assertThat(r.exitCode()).as(r.err()).isEqualTo(125);
        assertThat(r.errLines()).singleElement().asString().contains(message);
    }

    private static void await(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out");
            }
            Thread.sleep(100);
        }
    }
}
