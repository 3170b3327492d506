package dev.kiln.api.daemon;

import dev.kiln.KilnLog;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.logging.Level;
import java.util.logging.LogRecord;

import static org.assertj.core.api.Assertions.assertThat;

/** kilnd's log format: one line per event, UTC timestamp, kiln's level names, the sandbox, nothing forged. */
class LogLineTest {

    private static final String ID = "3f2a9c1b7d0e4455667788990011223344556677889900aabbccddeeff001122";

    @Test
    void anEventIsOneLineWithItsTimeLevelAndSandbox() {
        LogRecord r = record(Level.WARNING, "cannot take the sandbox off the kiln network: no such bridge",
                new KilnLog.Sandbox(ID));
        r.setInstant(Instant.parse("2026-12-06T22:55:01.123456Z"));

        assertThat(new LogLine(false).format(r)).isEqualTo("2026-12-06T22:55:01.123Z WARN  [sandbox 3f2a9c1b7d0e] "
                + "cannot take the sandbox off the kiln network: no such bridge\n");
    }

    @Test
    void aWholeSecondKeepsItsMillisecondsAndEveryLevelHasKilnsName() {
        LogRecord r = record(Level.INFO, "listening on /run/kiln/kiln.sock");
        r.setInstant(Instant.parse("2026-12-06T22:55:01Z"));
        assertThat(new LogLine(false).format(r)).isEqualTo("2026-12-06T22:55:01.000Z INFO  listening on /run/kiln/kiln.sock\n");
        assertThat(new LogLine(false).format(record(Level.SEVERE, "x"))).contains(" ERROR x");
        assertThat(new LogLine(false).format(record(Level.FINE, "x"))).contains(" DEBUG x");
    }

    @Test
    void aLineBreakInAValueCannotForgeALine() {
        String name = "web\n2026-12-06T22:55:01.123Z ERROR [sandbox 000000000000] forged\r\u2028";
        String out = new LogLine(false).format(record(Level.WARNING, "audit: cannot remove the sandbox " + name,
                new KilnLog.Sandbox(ID)));

        assertThat(out.lines()).hasSize(1);
        assertThat(out).endsWith("audit: cannot remove the sandbox web\\n2026-12-06T22:55:01.123Z ERROR "
                + "[sandbox 000000000000] forged\\r\\u2028\n");
    }

    @Test
    void aStackTraceFollowsOnlyAtDebugLevel() {
        RuntimeException cause = new IllegalStateException("boom");
        LogRecord r = record(Level.SEVERE, "watching the sandbox failed: boom", new KilnLog.Sandbox(ID), cause);

        String plain = new LogLine(false).format(r);
        assertThat(plain.lines()).hasSize(1);
        assertThat(plain).doesNotContain("IllegalStateException");
        String debug = new LogLine(true).format(r);
        assertThat(debug.lines().findFirst().get()).endsWith("ERROR [sandbox 3f2a9c1b7d0e] watching the sandbox failed: boom");
        assertThat(debug.lines().skip(1)).first().asString().isEqualTo("    java.lang.IllegalStateException: boom");
        assertThat(debug.lines().skip(1)).allMatch(l -> l.startsWith("    "));
    }

    @Test
    void aMessageIsPrintedAsWrittenNotAsAPattern() {
        // KilnLog's records carry the sandbox as a parameter: braces and quotes of a JSON value stay as they are
        String out = new LogLine(false).format(record(Level.INFO, "bad config {0} 'x' {\"a\":1}", new KilnLog.Sandbox(ID)));
        assertThat(out).endsWith("] bad config {0} 'x' {\"a\":1}\n");
    }

    @Test
    void kilnLogTagsTheSandboxForTheFormatter() {
        java.util.logging.Logger jul = java.util.logging.Logger.getLogger(LogLineTest.class.getName());
        java.util.List<LogRecord> seen = new java.util.ArrayList<>();
        java.util.logging.Handler h = new java.util.logging.Handler() {
            @Override
            public void publish(LogRecord record) {
                seen.add(record);
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        jul.addHandler(h);
        try {
            KilnLog.of(LogLineTest.class).sandbox(ID).warn("the monitor of the sandbox died", new RuntimeException("x"));
        } finally {
            jul.removeHandler(h);
        }
        assertThat(seen).hasSize(1);
        assertThat(new LogLine(false).format(seen.getFirst()))
                .matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z WARN  \\[sandbox 3f2a9c1b7d0e\\] "
                        + "the monitor of the sandbox died\n");
    }

    private static LogRecord record(Level level, String message, Object... params) {
        LogRecord r = new LogRecord(level, message);
        r.setParameters(params.length == 0 ? null : params);
        return r;
    }
}
