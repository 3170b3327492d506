package dev.kiln.isolation;

import dev.kiln.KilnException;

import java.util.Optional;

/**
 * Whether an isolation can run sandboxes on this host now, and if not, why (the runtime binary is missing, say). An
 * unavailable isolator stays registered, so asking for it is answered with its reason rather than "unknown".
 *
 * @param missing null when available; else what is missing, as one line a person reads
 */
public record Availability(String missing) {

    public static final Availability AVAILABLE = new Availability(null);

    public static Availability missing(String reason) {
        return new Availability(reason);
    }

    /** The first of several checks that fails, or available when none does. */
    public static Availability firstOf(Availability... checks) {
        for (Availability a : checks) {
            if (!a.available()) {
                return a;
            }
        }
        return AVAILABLE;
    }

    public boolean available() {
        return missing == null;
    }

    public Optional<String> reason() {
        return Optional.ofNullable(missing);
    }

    /** Throws the reason as kiln's "unavailable" error (exit 125), or returns. */
    public void require() {
        if (missing != null) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, missing);
        }
    }
}
