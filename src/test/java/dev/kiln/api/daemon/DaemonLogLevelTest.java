package dev.kiln.api.daemon;

import dev.kiln.testing.KilndProcess;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@code kiln daemon --log-level} as an operator uses it, on a kilnd of its own process: what each level lets into
 * kilnd's log, in its one-line format. A request for a sandbox that does not exist is the probe: kilnd logs the
 * client's error at debug level.
 */
class DaemonLogLevelTest {

    private static final String LINE = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z ";

    @TempDir
    Path tmp;

    @Test
    void warnOmitsInfoLinesAndJettysStartLines() throws Exception {
        List<String> log = run(List.of("--log-level", "warn"), null);

        assertThat(log).as("kilnd's log at warn").noneMatch(l -> l.contains("INFO") || l.contains("DEBUG"))
                .noneMatch(l -> l.contains("listening on")).noneMatch(l -> l.contains("no-such-sandbox"));
    }

    @Test
    void debugShowsDebugLinesAndJettysInfo() throws Exception {
        List<String> log = run(List.of("--log-level", "debug"), null);

        assertThat(log).as("kilnd's log at debug")
                .anyMatch(l -> l.matches(LINE + "INFO  listening on " + tmp.resolve("run/kiln.sock") + " .*"))
                .anyMatch(l -> l.matches(LINE + "DEBUG GET /v1/sandboxes/no-such-sandbox failed: .*"))
                .anyMatch(l -> l.contains(":INFO :oejs.Server:")); // Jetty's own format, one line too
    }

    @Test
    void theFlagWinsOverConfigYamlAndInfoIsTheDefaultsFormat() throws Exception {
        List<String> log = run(List.of("--log-level", "info"), "log-level: debug\n");

        assertThat(log).as("kilnd's log at info")
                .anyMatch(l -> l.matches(LINE + "INFO  listening on " + tmp.resolve("run/kiln.sock") + " .*"))
                .noneMatch(l -> l.contains("DEBUG")).noneMatch(l -> l.contains(":INFO :oejs"));
    }

    @Test
    void configYamlSetsTheLevelAndAnUnknownOneIsRefused() throws Exception {
        assertThat(run(List.of(), "log-level: error\n")).as("kilnd's log at config.yaml's error")
                .noneMatch(l -> l.contains("listening on"));

        assertThatThrownBy(() -> KilndProcess.start(tmp.resolve("root2"), tmp.resolve("run2"), Map.of(), null,
                List.of("--log-level", "loud")).close())
                .hasMessageContaining("unknown log level \"loud\" (use debug, info, warn, error)");
    }

    /** kilnd's log (without the fixture's command line) across one failing request and a stop. */
    private List<String> run(List<String> args, String configYaml) throws IOException {
        try (KilndProcess kilnd = KilndProcess.start(tmp.resolve("root"), tmp.resolve("run"), Map.of(), configYaml,
                args)) {
            assertThat(get(kilnd.socket(), "/v1/sandboxes/no-such-sandbox")).startsWith("HTTP/1.1 404");
            kilnd.stop();
            return Files.readAllLines(kilnd.log()).stream().filter(l -> !l.startsWith("---- ")).toList();
        }
    }

    private static String get(Path socket, String path) throws IOException {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            c.write(ByteBuffer.wrap(("GET " + path + " HTTP/1.1\r\nHost: kilnd\r\nConnection: close\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII)));
            ByteBuffer in = ByteBuffer.allocate(8192);
            StringBuilder out = new StringBuilder();
            while (c.read(in) > 0) {
                in.flip();
                out.append(StandardCharsets.UTF_8.decode(in));
                in.clear();
            }
            return out.toString();
        }
    }
}
