package dev.kiln.isolation.shim;

import static org.assertj.core.api.Assertions.assertThat;

import dev.kiln.isolation.AttachConnection;
import dev.kiln.isolation.LogReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Reading the json-file log: parsing, tail, since, and following a running shim to its end. */
@Timeout(60)
class LogReaderTest {
    private final ShimFixture fixture = new ShimFixture();

    @TempDir
    Path dir;

    @AfterEach
    void cleanUp() {
        fixture.close();
    }

    @Test
    void readsDockerJsonFileLinesAndSkipsTornOnes() throws Exception {
        Files.writeString(dir.resolve("log.json"), """
                {"log":"one\\n","stream":"stdout","time":"2026-11-27T10:00:00.000000001Z"}
                {"log":"bad \\ufffd\\u001b[0m","stream":"stderr","time":"2026-11-27T10:00:01.5Z"}
                {"log":"torn by a cra
                {"log":"three\\n","stream":"stdout","time":"2026-11-27T10:00:02Z"}
                """);
        LogReader reader = LogReader.of(dir);

        assertThat(reader.all()).extracting(LogReader.LogRecord::text)
                .containsExactly("one\n", "bad \ufffd\u001b[0m", "three\n");
        assertThat(reader.all().get(1).stream()).isEqualTo("stderr");
        assertThat(reader.all().get(0).time()).isEqualTo(Instant.parse("2026-11-27T10:00:00.000000001Z"));
        assertThat(reader.tail(2)).extracting(LogReader.LogRecord::text).containsExactly("bad \ufffd\u001b[0m", "three\n");
        assertThat(reader.tail(0)).isEmpty();
        assertThat(reader.since(Instant.parse("2026-11-27T10:00:01.5Z"))).hasSize(2);
        assertThat(new LogReader(dir.resolve("none.json")).all()).isEmpty();
    }

    @Test
    void invalidUtf8IsLoggedAsReplacementCharactersAndValidUtf8Unchanged() {
        fixture.launch(dir, ShimOptions.defaults(), "printf", "\\377ok \\303\\251 \\342\\202\n").await(Duration.ofSeconds(20));

        assertThat(LogReader.of(dir).all()).singleElement()
                .satisfies(r -> assertThat(r.data()).isEqualTo("\ufffdok é \ufffd\ufffd\n".getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void followDeliversEveryRecordAsWrittenAndReturnsOnceTheShimExited() throws Exception {
        Shim shim = fixture.launch(dir, ShimOptions.defaults(),
                "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done; printf end");
        List<String> seen = new ArrayList<>();

        LogReader.of(dir).follow(r -> seen.add(r.text()), () -> shim.exitStatus().isPresent());

        assertThat(seen).containsExactly("1\n", "2\n", "3\n", "end");
    }

    @Test
    void followWithATailStartsWithTheLastRecords() throws Exception {
        Shim shim = fixture.launch(dir, ShimOptions.defaults().withStdin(true).withWaitAttach(Duration.ofSeconds(20)),
                "sh", "-c", "echo a; echo b; echo c; read x; echo d");
        List<String> seen = new CopyOnWriteArrayList<>();
        try (AttachConnection client = shim.attach()) {
            for (int lines = 0; lines < 3; ) lines += client.read().text().split("\n").length;
            Thread follower = Thread.ofVirtual().start(() -> {
                try {
                    LogReader.of(dir).follow(2, r -> seen.add(r.text()), shim);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            while (seen.size() < 2) Thread.sleep(10); // the tail is of what was written when following began
            client.stdin("go\n".getBytes(StandardCharsets.UTF_8));
            follower.join(Duration.ofSeconds(20));
        }

        assertThat(seen).containsExactly("b\n", "c\n", "d\n");
    }
}
