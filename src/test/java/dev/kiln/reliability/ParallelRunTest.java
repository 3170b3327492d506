package dev.kiln.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Many clients at once against one kilnd (its own process): every short-lived --rm sandbox runs and leaves nothing
 * behind, and a name taken by concurrent creates goes to exactly one of them.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ParallelRunTest extends DaemonProcessTest {

    static final int RUNS = 50;
    static final int CLIENTS = 10;

    String image;

    @BeforeEach
    void image() {
        image = busybox();
    }



    @Test
    void manyFirstRunsOfAFreshImageAtOnceAllSucceed() throws Exception {
        // the image has never been unpacked: every create wants its root filesystem at the same moment
        List<KilnCli.Result> results = parallel(CLIENTS, () -> kiln.kiln("run", "--rm", image, "true"));
        assertThat(results).as("exit codes").allSatisfy(r -> assertThat(r.exitCode()).as(r.toString()).isZero());
        assertNoRowsWithin(Duration.ofSeconds(10));
        assertThat(Leftovers.mountsUnder(root)).as("mounts").isEmpty();
        assertThat(Leftovers.sandboxDirs(root)).as("sandbox dirs").isEmpty();
    }

    @Test
    void fiftyParallelRunsWithRmAllSucceedAndLeaveNothing() throws Exception {
        kiln.ok("run", "--rm", image, "true"); // the image's first unpack is manyFirstRunsOfAFreshImageAtOnce's
        assertNoRowsWithin(Duration.ofSeconds(10));
        // the sandboxes' ids, seen through the API while they live (the CLI prints none for an attached run)
        Set<String> seen = ConcurrentHashMap.newKeySet();
        AtomicBoolean running = new AtomicBoolean(true);
        Thread watcher = Thread.ofVirtual().start(() -> {
            while (running.get()) {
                RawHttp.Response r = RawHttp.request(kilnd.socket(), "GET", "/v1/sandboxes", null);
                if (r.status() == 200) {
                    r.json().forEach(row -> seen.add(row.path("ID").asText()));
                }
                try {
                    Thread.sleep(25);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });

        long started = System.nanoTime();
        List<KilnCli.Result> results = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(CLIENTS)) {
            List<Future<KilnCli.Result>> runs = new ArrayList<>();
            for (int i = 0; i < RUNS; i++) {
                runs.add(pool.submit(() -> kiln.kiln("run", "--rm", image, "true")));
            }
            for (Future<KilnCli.Result> f : runs) {
                results.add(f.get(90, TimeUnit.SECONDS));
            }
        } finally {
            running.set(false);
            watcher.join();
        }
        Duration took = Duration.ofNanos(System.nanoTime() - started);
        System.out.printf("ParallelRunTest: %d × run --rm true with %d clients in %.1f s (%d sandboxes seen)%n",
                RUNS, CLIENTS, took.toMillis() / 1000.0, seen.size());

        assertThat(results).as("exit codes and stderr").allSatisfy(r ->
                assertThat(r.exitCode()).as(r.toString()).isZero());
        assertThat(results).allSatisfy(r -> assertThat(r.err()).isEmpty());

        // as docker run --rm, the sandbox is gone when the CLI returns
        List<String> rowsRightAfter = kiln.ok("ps", "-a", "-q").out().lines().toList();
        assertNoRowsWithin(Duration.ofSeconds(10));
        assertThat(Leftovers.mountsUnder(root)).as("mounts").isEmpty();
        assertThat(Leftovers.runtimeState(runRoot)).as("runc state").isEmpty();
        assertThat(Leftovers.sandboxDirs(root)).as("sandbox dirs").isEmpty();
        assertThat(seen).as("sandboxes seen while running").isNotEmpty();
        for (String id : seen) {
            assertThat(Leftovers.cgroupDirs(id)).as("cgroups of " + id).isEmpty();
        }
        assertThat(Leftovers.processesUnder(root).stream().filter(p -> p.pid() != kilnd.pid())
                .map(Leftovers::cmdline).toList()).as("processes").isEmpty();
        assertThat(rowsRightAfter).as("rows still listed when every run --rm had returned (removal lags the exit)")
                .isEmpty();
    }

    @Test
    void aRunRmSandboxIsGoneWhenTheCliReturns() {
        // as docker run --rm: a script may reuse the name at once
        for (int i = 0; i < 5; i++) {
            KilnCli.Result r = kiln.kiln("run", "--rm", "--name", "again", image, "true");
            assertThat(r.exitCode()).as("run " + i + " of --rm --name again: " + r).isZero();
        }
    }

    @Test
    void concurrentCreatesWithOneNameHaveExactlyOneWinner() throws Exception {
        kiln.ok("run", "--rm", image, "true"); // unpacked once, so the creates race for the name only
        assertNoRowsWithin(Duration.ofSeconds(10));
        int clients = 5;
        List<KilnCli.Result> results = parallel(clients, () -> kiln.kiln("create", "--name", "same", image, "true"));
        List<KilnCli.Result> won = results.stream().filter(r -> r.exitCode() == 0).toList();
        List<KilnCli.Result> lost = results.stream().filter(r -> r.exitCode() != 0).toList();
        assertThat(won).as("winners among " + results).hasSize(1);
        assertThat(lost).hasSize(clients - 1).allSatisfy(r -> {
            assertThat(r.exitCode()).as(r.toString()).isEqualTo(125);
            assertThat(r.errLines()).as(r.toString()).hasSize(1);
            assertThat(r.errLines().getFirst()).startsWith("kiln: ").contains("\"same\"").contains("already in use");
        });
        String id = won.getFirst().out().strip();
        JsonNode rows = RawHttp.request(kilnd.socket(), "GET", "/v1/sandboxes", null).json();
        assertThat(rows).hasSize(1);
        assertThat(rows.get(0).path("ID").asText()).isEqualTo(id);
        assertThat(Leftovers.sandboxDirs(root)).as("the losers leave no directory").containsExactly(id.substring(0, 12));

        kiln.ok("rm", "same");
        assertNoRowsWithin(Duration.ZERO);
        assertThat(Leftovers.mountsUnder(root)).isEmpty();
        assertThat(Leftovers.sandboxDirs(root)).isEmpty();
    }

    private static List<KilnCli.Result> parallel(int n, java.util.concurrent.Callable<KilnCli.Result> task)
            throws Exception {
        CountDownLatch go = new CountDownLatch(1);
        List<KilnCli.Result> results = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(n)) {
            List<Future<KilnCli.Result>> futures = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                futures.add(pool.submit(() -> {
                    go.await();
                    return task.call();
                }));
            }
            go.countDown();
            for (Future<KilnCli.Result> f : futures) {
                results.add(f.get(60, TimeUnit.SECONDS));
            }
        }
        return results;
    }

    private void assertNoRowsWithin(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        String rows;
        while (true) {
            rows = kiln.ok("ps", "-a", "--no-trunc", "-q").out();
            if (rows.isBlank() || System.nanoTime() - deadline > 0) {
                break;
            }
            Thread.sleep(100);
        }
        assertThat(rows).as("rows left").isBlank();
    }
}
