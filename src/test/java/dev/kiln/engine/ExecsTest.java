package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.isolation.Isolators;
import dev.kiln.isolation.RunningProcess;
import dev.kiln.testing.BusyboxRootfs;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The engine's one exec registry ({@link Execs}), which kiln's /v1/execs and Docker's /exec both use: create, start
 * once, inspect, and forget with the sandbox, against {@link FakeIsolator} (its execs are files, so this runs in
 * milliseconds). What a user sees of execs through real runtimes is tested by SandboxCliTest and DockerCliTest.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ExecsTest {

    @TempDir
    static Path root;
    static final String IMAGE = SandboxLifecycleTest.IMAGE; // the image SandboxLifecycleTest.request names

    FakeIsolator fake;
    Engine engine;

    @BeforeAll
    static void image() throws IOException {
        Path tar = BusyboxRootfs.tarball(Files.createDirectories(root.resolve("work")), Map.of());
        try (Engine e = open(new FakeIsolator())) {
            e.images().rootfs(e.images().importRootfs(tar, null, IMAGE));
        }
    }

    @BeforeEach
    void daemon() {
        fake = new FakeIsolator();
        engine = open(fake);
    }

    @AfterEach
    void stop() {
        for (Sandbox s : engine.sandboxes().list()) {
            engine.sandboxes().remove(s.id(), true);
        }
        engine.close();
    }

    @Test
    void anExecIsCreatedStartedOnceAndInspectedUntilItEnds() {
        Sandbox s = running("host");
        Execs execs = engine.execs();

        Execs.Exec e = execs.create("host", new ExecConfig(List.of("echo", "hi"), null, null, null, false, false,
                false));
        assertThat(e.id()).matches("[0-9a-f]{64}");
        assertThat(e.sandboxId()).as("the full id, whatever ref was given").isEqualTo(s.id());
        assertThat(execs.find(e.id())).containsSame(e);
        assertThat(e.process()).as("not started").isEmpty();
        assertThat(e.running()).isFalse();
        assertThat(e.exitStatus()).isEmpty();
        assertThat(fake.calls).noneMatch(c -> c.startsWith("exec"));

        RunningProcess p = execs.start(e.id(), true);
        assertThat(fake.calls).contains("exec " + e.id() + " echo hi");
        assertThat(e.process()).containsSame(p);
        assertThat(e.running()).isTrue();
        assertThat(e.exitStatus()).as("running: no exit code yet").isEmpty();
        assertThatThrownBy(() -> execs.start(e.id(), true)).isInstanceOf(KilnException.class)
                .hasMessage("exec " + e.id() + " has already been started");

        FakeIsolator.finishExec(engine.sandboxes().dir(s), e.id(), 7);
        assertThat(e.running()).isFalse();
        assertThat(e.exitStatus()).get().extracting(st -> st.exitCode()).isEqualTo(7);
        assertThat(execs.find(e.id())).as("inspectable after its end, as Docker's").isPresent();
    }

    @Test
    void createIsRefusedWithoutACommandOrARunningSandbox() {
        engine.sandboxes().create(SandboxLifecycleTest.request("idle", false));
        Execs execs = engine.execs();
        ExecConfig ls = new ExecConfig(List.of("ls"), null, null, null, false, false, false);

        assertThatThrownBy(() -> execs.create("idle", ls)).isInstanceOf(KilnException.class)
                .hasMessage("sandbox idle is not running");
        assertThatThrownBy(() -> execs.create("nobody", ls)).isInstanceOf(KilnException.class)
                .extracting(x -> ((KilnException) x).kind()).isEqualTo(KilnException.Kind.NOT_FOUND);
        running("busy");
        assertThatThrownBy(() -> execs.create("busy", new ExecConfig(List.of(), null, null, null, false, false,
                false))).isInstanceOf(KilnException.class).hasMessage("exec needs a command");
        assertThat(execs.find("0".repeat(64))).isEmpty();
        assertThatThrownBy(() -> execs.start("0".repeat(64), true)).isInstanceOf(KilnException.class)
                .extracting(x -> ((KilnException) x).kind()).isEqualTo(KilnException.Kind.NOT_FOUND);
    }

    @Test
    void theExecsOfARemovedSandboxAreForgottenThoseOfAStoppedOneKept() {
        running("gone");
        running("stays");
        Execs execs = engine.execs();
        ExecConfig sh = new ExecConfig(List.of("sh"), null, null, null, false, false, false);
        String ofGone = execs.create("gone", sh).id();
        String ofStays = execs.create("stays", sh).id();

        engine.sandboxes().kill("stays", Signals.SIGKILL);
        engine.sandboxes().await("stays", Duration.ofSeconds(5));
        engine.sandboxes().remove("gone", true);

        assertThat(execs.find(ofGone)).as("removed with its sandbox, as Docker's").isEmpty();
        assertThat(execs.find(ofStays)).as("its sandbox exited but is still there").isPresent();
        engine.sandboxes().remove("stays", false);
        assertThat(execs.find(ofStays)).isEmpty();
    }

    private Sandbox running(String name) {
        Sandbox s = engine.sandboxes().create(SandboxLifecycleTest.request(name, false));
        engine.sandboxes().start(s.id(), false);
        return s;
    }

    static Engine open(FakeIsolator isolator) {
        return new Engine(root.resolve("store"), root.resolve("run"), java.util.Set.of(),
                new Isolators(List.of(isolator)), FakeIsolator.NAME, null);
    }
}
