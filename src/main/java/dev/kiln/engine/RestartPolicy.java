package dev.kiln.engine;

import dev.kiln.KilnException;

/**
 * Docker's restart policy ({@code --restart}, HostConfig.RestartPolicy): what kilnd does when a sandbox's main
 * process ends. {@code no}: nothing; {@code on-failure[:N]}: start it again after a non-zero exit, at most N times
 * (0: no bound); {@code always}: after any exit, and when kilnd starts; {@code unless-stopped}: as always, except
 * after the user stopped it. A stop, kill or rm by the user never restarts it.
 */
public record RestartPolicy(String name, int maximumRetryCount) {

    public static final RestartPolicy NO = new RestartPolicy("no", 0);

    /** Checked: a known name, a count only with on-failure and not negative. */
    public RestartPolicy {
        if (name == null || name.isEmpty()) {
            name = "no";
        }
        if (!java.util.List.of("no", "on-failure", "always", "unless-stopped").contains(name)) {
            throw KilnException.invalid("invalid restart policy \"" + name + "\" (use no, on-failure[:N], always or "
                    + "unless-stopped)");
        }
        if (maximumRetryCount < 0) {
            throw KilnException.invalid("invalid restart policy: maximum retry count cannot be negative");
        }
        if (maximumRetryCount > 0 && !name.equals("on-failure")) {
            throw KilnException.invalid("invalid restart policy: maximum retry count can only be used with "
                    + "'on-failure'");
        }
    }

    /** The CLI's spelling: {@code no}, {@code on-failure}, {@code on-failure:3}, {@code always}, {@code unless-stopped}. */
    public static RestartPolicy parse(String spec) {
        if (spec == null || spec.isEmpty()) {
            return NO;
        }
        int colon = spec.indexOf(':');
        if (colon < 0) {
            return new RestartPolicy(spec, 0);
        }
        String count = spec.substring(colon + 1);
        if (!count.matches("\\d{1,9}")) {
            throw KilnException.invalid("invalid restart policy \"" + spec + "\": the count must be a number");
        }
        return new RestartPolicy(spec.substring(0, colon), Integer.parseInt(count));
    }

    public boolean none() {
        return name.equals("no");
    }

    /** Whether a run that ended with {@code exitCode}, after {@code restarts} restarts by this policy, starts again. */
    boolean restartsAfter(int exitCode, int restarts) {
        return switch (name) {
            case "always", "unless-stopped" -> true;
            case "on-failure" -> exitCode != 0 && (maximumRetryCount == 0 || restarts < maximumRetryCount);
            default -> false;
        };
    }

    /** Whether kilnd starts it when kilnd itself starts (the host rebooted, or kilnd restarted with it stopped). */
    boolean startsWithDaemon(boolean stoppedByUser) {
        return name.equals("always") || (name.equals("unless-stopped") && !stoppedByUser);
    }
}
