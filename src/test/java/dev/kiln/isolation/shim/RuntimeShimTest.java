package dev.kiln.isolation.shim;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.isolation.LogReader;
import dev.kiln.testing.Command;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** kiln-shim in front of the real OCI runtimes, on a minimal busybox bundle made by {@code runc spec}. */
@Timeout(120)
class RuntimeShimTest {
    private final ShimFixture fixture = new ShimFixture();
    private final List<Runnable> cleanups = new ArrayList<>();

    @TempDir
    Path tmp;

    @BeforeEach
    void requireRoot() {
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "OCI runtimes need root here");
    }

    @AfterEach
    void cleanUp() {
        fixture.close();
        cleanups.forEach(Runnable::run);
    }

    @Test
    void runcUnderTheShimLogsTheContainersOutputAndExitCode() throws Exception {
        Path runc = Command.require("runc", "runc");

        Shim shim = underShim(runc, List.of());

        assertThat(shim.await(Duration.ofSeconds(60)).orElseThrow().exitCode()).isEqualTo(3);
        assertThat(LogReader.of(tmp.resolve("shim")).all())
                .extracting(LogReader.LogRecord::stream, LogReader.LogRecord::text)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("stdout", "hi\n"));
    }

    @Test
    void runscUnderTheShimLogsTheSandboxesOutputAndExitCode() throws Exception {
        Path runsc = Command.require("runsc", "runsc");

        Shim shim = underShim(runsc, List.of("--platform=ptrace", "--network=none"));

        assertThat(shim.await(Duration.ofSeconds(60)).orElseThrow().exitCode()).isEqualTo(3);
        assertThat(LogReader.of(tmp.resolve("shim")).all()).extracting(LogReader.LogRecord::text).contains("hi\n");
    }

    /** {@code RUNTIME --root R [flags] run --bundle B ID} under a shim, for a bundle whose process prints and exits 3. */
    private Shim underShim(Path runtime, List<String> flags) throws Exception {
        Path bundle = Files.createDirectories(tmp.resolve("bundle"));
        Path bin = Files.createDirectories(bundle.resolve("rootfs/bin"));
        Path busybox = Path.of("/bin/busybox");
        Assumptions.assumeTrue(Files.isExecutable(busybox), "needs a static /bin/busybox (Debian busybox-static)");
        Files.copy(busybox, bin.resolve("busybox"));
        Files.createSymbolicLink(bin.resolve("sh"), Path.of("busybox"));
        Command.run("runc", "spec", "--bundle", bundle.toString());
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(bundle.resolve("config.json").toFile());
        ObjectNode process = (ObjectNode) config.get("process");
        process.put("terminal", false);
        process.putArray("args").add("sh").add("-c").add("echo hi; exit 3");
        json.writeValue(bundle.resolve("config.json").toFile(), config);

        Path state = Files.createDirectories(tmp.resolve("state"));
        String id = "kiln-shim-test-" + UUID.randomUUID().toString().substring(0, 8);
        List<String> command = new ArrayList<>(List.of(runtime.toString(), "--root", state.toString()));
        command.addAll(flags);
        command.addAll(List.of("run", "--bundle", bundle.toString(), id));
        cleanups.add(() -> {
            try {
                Command.run(runtime.toString(), "--root", state.toString(), "delete", "-f", id);
            } catch (RuntimeException e) {
                // already gone: `run` deletes the container when its process exits
            }
        });
        return fixture.launch(Files.createDirectories(tmp.resolve("shim")), ShimOptions.defaults(),
                command.toArray(String[]::new));
    }
}
