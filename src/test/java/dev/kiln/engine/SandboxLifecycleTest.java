package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.isolation.Isolators;
import dev.kiln.testing.BusyboxRootfs;
import org.junit.jupiter.api.AfterAll;
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
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The engine's sandbox life-cycle (create, start, stop, kill, exit, rm, restart, and a daemon restart that re-adopts
 * what the last one started) against {@link FakeIsolator}, which runs nothing: the engine's own rules (states and
 * their order in SQLite, events, the watcher of each run, clean-up, recovery) in milliseconds. The real runtimes'
 * life-cycle is tested through the CLI (SandboxCliTest, DaemonCrashTest); this is the engine's share of it.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS) // each takes well under a second; the bound is for a loaded host
class SandboxLifecycleTest {

    @TempDir
    static Path root;
    static final String IMAGE = "lifecycle/busybox:1";

    FakeIsolator fake;
    Engine engine;
    final List<String> events = new CopyOnWriteArrayList<>();

    @BeforeAll
    static void image() throws IOException {
        Path tar = BusyboxRootfs.tarball(Files.createDirectories(root.resolve("work")), Map.of());
        try (Engine e = open(new FakeIsolator())) {
            e.images().rootfs(e.images().importRootfs(tar, null, IMAGE)); // unpacked once, here
        }
    }

    @BeforeEach
    void daemon() {
        fake = new FakeIsolator();
        engine = open(fake);
        engine.events().subscribe(null, e -> events.add(e.action()));
    }

    @AfterEach
    void stop() {
        for (Sandbox s : engine.sandboxes().list()) {
            FakeIsolator.finish(dir(s), 0);
            engine.sandboxes().awaitExitRecorded(s.id());
            engine.sandboxes().remove(s.id(), true);
        }
        engine.close();
    }

    @AfterAll
    static void nothingLeft() throws IOException {
        try (var dirs = Files.list(root.resolve("store/sandboxes"))) {
            assertThat(dirs.toList()).as("sandbox directories left").isEmpty();
        }
    }

    @Test
    void createStartExitAndRemove() {
        Sandboxes sandboxes = engine.sandboxes();
        Sandbox s = sandboxes.create(request("one", false));
        assertThat(s.state()).isEqualTo(SandboxState.CREATED);
        assertThat(s.isolation()).isEqualTo(FakeIsolator.NAME);
        assertThat(fake.calls).containsExactly("create " + s.id());
        assertThat(sandboxes.runtimeOf(s)).isEqualTo("fake-runtime");

        long pid = sandboxes.start(s.id(), false).pid();
        Sandbox running = sandboxes.get("one");
        assertThat(running.state()).isEqualTo(SandboxState.RUNNING);
        assertThat(running.shimPid()).as("the run's mark, recorded").isEqualTo(pid);
        assertThat(sandboxes.top("one")).contains("fake");

        FakeIsolator.finish(dir(s), 3); // the process exits by itself: its watcher records it
        assertThat(sandboxes.await("one", Duration.ofSeconds(5))).isEqualTo(3);
        Sandbox exited = sandboxes.get("one");
        assertThat(exited.state()).isEqualTo(SandboxState.EXITED);
        assertThat(exited.exitCode()).isEqualTo(3);
        assertThat(fake.calls).endsWith("cleanup " + s.id()); // released, files kept for a restart

        sandboxes.remove("one", false);
        assertThat(sandboxes.list()).isEmpty();
        assertThat(fake.calls).endsWith("cleanup " + s.id() + " files");
        assertThat(dir(s)).doesNotExist();
        assertThat(events).containsExactly("create", "start", "die", "destroy");
    }

    @Test
    void stopSendsTheStopSignalThenSigkillAfterTheTimeout() {
        Sandboxes sandboxes = engine.sandboxes();
        Sandbox s = sandboxes.create(request("stubborn", false));
        sandboxes.start(s.id(), false);
        fake.ignored.add(Signals.SIGTERM);
        long t0 = System.nanoTime();
        sandboxes.stop("stubborn", Duration.ofMillis(200));
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThanOrEqualTo(Duration.ofMillis(200));
        assertThat(fake.calls).containsSubsequence("kill " + Signals.SIGTERM, "kill " + Signals.SIGKILL);
        Sandbox stopped = sandboxes.get("stubborn");
        assertThat(stopped.state()).isEqualTo(SandboxState.EXITED);
        assertThat(stopped.exitCode()).isEqualTo(137);

        fake.ignored.clear();
        sandboxes.start("stubborn", false);
        sandboxes.stop("stubborn", Duration.ofSeconds(5));
        assertThat(sandboxes.get("stubborn").exitCode()).as("TERM ends it at once").isEqualTo(143);
        assertThat(events).containsExactly("create", "start", "die", "stop", "start", "die", "stop");
    }

    @Test
    void killEndsARunningSandboxAndIsRefusedForOneThatIsNot() {
        Sandboxes sandboxes = engine.sandboxes();
        Sandbox s = sandboxes.create(request("victim", false));
        assertThatThrownBy(() -> sandboxes.kill("victim", Signals.SIGKILL)).isInstanceOf(KilnException.class)
                .hasMessage("sandbox victim is not running");
        sandboxes.start(s.id(), false);
        sandboxes.kill("victim", Signals.SIGKILL);
        assertThat(sandboxes.await("victim", Duration.ofSeconds(5))).isEqualTo(137);
        assertThatThrownBy(() -> sandboxes.kill("victim", Signals.SIGKILL)).isInstanceOf(KilnException.class)
                .hasMessage("sandbox victim is not running");
    }

    @Test
    void restartIsANewRunAndRmForceEndsARunningSandbox() {
        Sandboxes sandboxes = engine.sandboxes();
        Sandbox s = sandboxes.create(request("again", false));
        long first = sandboxes.start(s.id(), false).pid();
        sandboxes.restart("again", Duration.ofSeconds(5));
        Sandbox restarted = sandboxes.get("again");
        assertThat(restarted.state()).isEqualTo(SandboxState.RUNNING);
        assertThat(restarted.shimPid()).isNotEqualTo(first);
        assertThat(restarted.restarts()).isEqualTo(1);

        assertThatThrownBy(() -> sandboxes.remove("again", false)).isInstanceOf(KilnException.class)
                .hasMessageContaining("is running");
        sandboxes.remove("again", true);
        assertThat(sandboxes.list()).isEmpty();
        assertThat(fake.calls).contains("kill " + Signals.SIGKILL);
    }

    @Test
    void anAutoRemovedSandboxIsGoneOnceItsExitIsRecorded() {
        Sandboxes sandboxes = engine.sandboxes();
        Sandbox s = sandboxes.create(request("brief", true));
        sandboxes.start(s.id(), false);
        FakeIsolator.finish(dir(s), 0);
        sandboxes.awaitExitRecorded(s.id());
        assertThat(sandboxes.list()).isEmpty();
        assertThat(dir(s)).doesNotExist();
    }

    @Test
    void theStreamThatReadTheExitRecordsItAndRemovesARmSandboxWithoutWaitingForTheWatcher() {
        Sandboxes sandboxes = engine.sandboxes();
        Sandbox s = sandboxes.create(request("streamed", true));
        dev.kiln.isolation.SandboxTask run = sandboxes.start(s.id(), true);
        fake.watchersAsleep = true; // the run's watcher wakes late (inotify and its threads, on a busy host)
        try {
            FakeIsolator.finish(dir(s), 5); // the exit frame the stream read comes after the shim's exit.json

            assertThat(sandboxes.awaitExitRecorded(s.id(), run)).isEqualTo(5);
            assertThat(sandboxes.list()).as("removed before the client is told the exit").isEmpty();
            assertThat(dir(s)).doesNotExist();
            assertThat(events).containsSubsequence("start", "die", "destroy");
        } finally {
            fake.watchersAsleep = false;
        }
    }

    /**
     * A daemon that dies leaves its sandboxes to their monitors; the next one, over the same root, re-adopts them
     * through the isolator: one still running is watched again, one that ended meanwhile gets its recorded exit, one
     * whose monitor died while its workload ran is ended (137), one whose monitor and workload both ended unrecorded
     * gets 255.
     */
    @Test
    void theNextDaemonReadoptsWhatTheLastOneStarted() {
        Sandbox running = engine.sandboxes().create(request("survivor", false));
        Sandbox ended = engine.sandboxes().create(request("ended", false));
        Sandbox lost = engine.sandboxes().create(request("lost", false));
        Sandbox orphan = engine.sandboxes().create(request("orphan", false));
        for (Sandbox s : List.of(running, ended, lost, orphan)) {
            engine.sandboxes().start(s.id(), false);
        }
        engine.close(); // the daemon is gone: nothing records exits now

        FakeIsolator.finish(dir(ended), 7);
        FakeIsolator.loseExit(dir(lost));
        FakeIsolator.killMonitor(dir(orphan));

        FakeIsolator next = new FakeIsolator();
        engine = open(next);
        Sandboxes sandboxes = engine.sandboxes();
        assertThat(sandboxes.get("survivor").state()).as("as the database says, before recovery")
                .isEqualTo(SandboxState.RUNNING);
        sandboxes.reconcile();

        assertThat(sandboxes.get("ended").state()).isEqualTo(SandboxState.EXITED);
        assertThat(sandboxes.get("ended").exitCode()).isEqualTo(7);
        assertThat(sandboxes.get("lost").exitCode()).as("no exit recorded").isEqualTo(255);
        assertThat(sandboxes.get("orphan").exitCode()).as("its workload killed").isEqualTo(137);
        assertThat(next.running(engine.sandboxes().spec(orphan))).isFalse();
        assertThat(sandboxes.get("survivor").state()).isEqualTo(SandboxState.RUNNING);
        assertThat(next.calls).contains("cleanup " + ended.id(), "cleanup " + lost.id(), "cleanup " + orphan.id())
                .doesNotContain("cleanup " + running.id());

        FakeIsolator.finish(dir(running), 5); // the re-adopted run ends: the new daemon's watcher records it
        assertThat(sandboxes.await("survivor", Duration.ofSeconds(5))).isEqualTo(5);
        assertThat(sandboxes.get("survivor").state()).isEqualTo(SandboxState.EXITED);
        assertThat(next.calls).contains("cleanup " + running.id());

        sandboxes.start("survivor", false); // and it starts again under the new daemon
        assertThat(sandboxes.get("survivor").state()).isEqualTo(SandboxState.RUNNING);
    }

    /** A monitor that dies while its workload runs ends the run at once: the workload is killed, 137 recorded. */
    @Test
    void aDeadMonitorEndsItsRunAtOnce() {
        Sandboxes sandboxes = engine.sandboxes();
        Sandbox s = sandboxes.create(request("unwatched", false));
        sandboxes.start(s.id(), false);
        FakeIsolator.killMonitor(dir(s));
        assertThat(sandboxes.await("unwatched", Duration.ofSeconds(5))).isEqualTo(137);
        assertThat(sandboxes.get("unwatched").state()).isEqualTo(SandboxState.EXITED);
        assertThat(fake.running(sandboxes.spec(s))).as("what was left is ended").isFalse();
    }

    @Test
    void whatTheIsolationCannotDoIsRefusedAtCreate() {
        Sandboxes sandboxes = engine.sandboxes();
        assertThatThrownBy(() -> sandboxes.create(request("k", false, null, "/boot/vmlinuz")))
                .isInstanceOf(KilnException.class)
                .hasMessage("--kernel is not supported by any isolation here (this sandbox's is fake)");
        assertThatThrownBy(() -> sandboxes.create(request("k", false, "vm", null))).isInstanceOf(KilnException.class)
                .hasMessage("unknown isolation \"vm\" (available: fake)");
        assertThat(sandboxes.list()).isEmpty();
    }

    // ---- helpers ----

    static Engine open(FakeIsolator isolator) {
        return new Engine(root.resolve("store"), root.resolve("run"), java.util.Set.of(),
                new Isolators(List.of(isolator)), FakeIsolator.NAME, null);
    }

    static SandboxConfig request(String name, boolean autoRemove) {
        return request(name, autoRemove, null, null);
    }

    /** {@code sleep 1000} of the busybox image on no network, with --isolation and --kernel if given. */
    static SandboxConfig request(String name, boolean autoRemove, String isolation, String kernel) {
        return new SandboxConfig(IMAGE, name, List.of("sleep", "1000"), null, null, null, null, null, isolation, null,
                0, 0, 0, false, null, false, false, autoRemove, null, null, "none", false, null, null, null, null,
                kernel, 0);
    }

    Path dir(Sandbox s) {
        return engine.sandboxes().dir(s);
    }

}
