package dev.kiln.cli;

import dev.kiln.KilnException;
import dev.kiln.api.v1.Supervision;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** {@code --restart} and the health-check flags of {@code kiln create/run}, spelled as Docker's. */
final class SupervisionOptions {

    @Option(names = "--restart", paramLabel = "POLICY",
            description = "no, on-failure[:N], always or unless-stopped (kilnd restarts the sandbox when it exits)")
    String restart;

    @Option(names = "--health-cmd", paramLabel = "CMD", description = "Command run to check health (through sh -c)")
    String healthCmd;

    @Option(names = "--health-interval", paramLabel = "DURATION", description = "Time between checks (default 30s)")
    String healthInterval;

    @Option(names = "--health-timeout", paramLabel = "DURATION", description = "A check's time limit (default 30s)")
    String healthTimeout;

    @Option(names = "--health-start-period", paramLabel = "DURATION",
            description = "Failures in this time after the start do not count (default 0s)")
    String healthStartPeriod;

    @Option(names = "--health-retries", paramLabel = "N", description = "Failures in a row before unhealthy (3)")
    int healthRetries;

    @Option(names = "--no-healthcheck", description = "Disable the image's HEALTHCHECK")
    boolean noHealthcheck;

    Supervision request() {
        if (noHealthcheck && (healthCmd != null || healthInterval != null || healthTimeout != null
                || healthStartPeriod != null || healthRetries != 0)) {
            throw KilnException.invalid("--no-healthcheck conflicts with --health-* options");
        }
        List<String> test = noHealthcheck ? List.of("NONE")
                : healthCmd == null ? null : List.of("CMD-SHELL", healthCmd);
        if (restart == null && test == null && healthInterval == null && healthTimeout == null
                && healthStartPeriod == null && healthRetries == 0) {
            return null;
        }
        return new Supervision(restart, test, nanos("--health-interval", healthInterval),
                nanos("--health-timeout", healthTimeout), nanos("--health-start-period", healthStartPeriod),
                healthRetries);
    }

    private static final Pattern PART = Pattern.compile("(\\d+(?:\\.\\d+)?)(ns|us|µs|ms|s|m|h)");

    /** Go's duration syntax, as Docker parses it: {@code 30s}, {@code 1m30s}, {@code 500ms}. */
    static long nanos(String flag, String value) {
        if (value == null || value.isEmpty()) {
            return 0;
        }
        Matcher m = PART.matcher(value);
        long total = 0;
        int at = 0;
        while (m.find() && m.start() == at) {
            double n = Double.parseDouble(m.group(1));
            long unit = switch (m.group(2)) {
                case "ns" -> 1L;
                case "us", "µs" -> 1_000L;
                case "ms" -> 1_000_000L;
                case "s" -> 1_000_000_000L;
                case "m" -> 60_000_000_000L;
                default -> 3_600_000_000_000L;
            };
            total += (long) (n * unit);
            at = m.end();
        }
        if (at != value.length() || at == 0) {
            throw KilnException.invalid("invalid " + flag + " \"" + value + "\" (a duration such as 30s, 1m30s or "
                    + "500ms)");
        }
        return total;
    }
}
