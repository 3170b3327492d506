package dev.kiln.engine;

import dev.kiln.KilnException;

import java.util.List;

/**
 * Docker's health check (Config.Healthcheck, the image's HEALTHCHECK, {@code --health-*}): {@code test} is
 * {@code ["NONE"]} (none, {@code --no-healthcheck}), {@code ["CMD", args...]} or {@code ["CMD-SHELL", command]};
 * null or empty: the image's. Durations are nanoseconds, 0: Docker's default (30 s interval and timeout, 0 start
 * period), {@code retries} 0: 3. kilnd runs the test as an exec in the running sandbox.
 */
public record Healthcheck(List<String> test, long interval, long timeout, long startPeriod, int retries) {

    static final long DEFAULT_INTERVAL = 30_000_000_000L;
    static final long DEFAULT_TIMEOUT = 30_000_000_000L;
    static final int DEFAULT_RETRIES = 3;
    /** Docker's smallest interval, timeout and start period. */
    static final long MINIMUM = 1_000_000L;

    public Healthcheck {
        test = test == null ? null : List.copyOf(test);
        if (test != null && !test.isEmpty()) {
            String kind = test.getFirst();
            if (!List.of("NONE", "CMD", "CMD-SHELL").contains(kind)) {
                throw KilnException.invalid("invalid health check test \"" + kind + "\" (NONE, CMD or CMD-SHELL)");
            }
            if (!kind.equals("NONE") && test.size() < 2) {
                throw KilnException.invalid("a health check " + kind + " needs a command");
            }
        }
        for (long d : new long[]{interval, timeout, startPeriod}) {
            if (d < 0 || (d > 0 && d < MINIMUM)) {
                throw KilnException.invalid("health check durations must be at least 1ms");
            }
        }
        if (retries < 0) {
            throw KilnException.invalid("--health-retries cannot be negative");
        }
    }

    /** No check at all. */
    public boolean none() {
        return test == null || test.isEmpty() || test.getFirst().equals("NONE");
    }

    /** This one over the image's: a test of its own replaces the image's, durations and retries given win. */
    Healthcheck over(Healthcheck image) {
        if (image == null) {
            return this;
        }
        return new Healthcheck(test == null || test.isEmpty() ? image.test() : test,
                interval > 0 ? interval : image.interval(), timeout > 0 ? timeout : image.timeout(),
                startPeriod > 0 ? startPeriod : image.startPeriod(), retries > 0 ? retries : image.retries());
    }

    /** The command an exec runs: CMD's arguments as they are, CMD-SHELL's through {@code /bin/sh -c}. */
    List<String> command() {
        return test.getFirst().equals("CMD-SHELL") ? List.of("/bin/sh", "-c", test.get(1))
                : test.subList(1, test.size());
    }

    long intervalOrDefault() {
        return interval > 0 ? interval : DEFAULT_INTERVAL;
    }

    long timeoutOrDefault() {
        return timeout > 0 ? timeout : DEFAULT_TIMEOUT;
    }

    int retriesOrDefault() {
        return retries > 0 ? retries : DEFAULT_RETRIES;
    }
}
