package dev.kiln.api;

import dev.kiln.KilnException;

/**
 * A request kilnd stops reading because of its client, not its content: a body that stalled, or was cut as its
 * peer's most stalled one (408), or one more body than its peer may keep kilnd waiting for (429). The answer closes
 * the connection: what is left of the body is never read.
 */
final class RefusedRequest extends KilnException {

    private final int status;

    private RefusedRequest(int status, String message) {
        super(Kind.INVALID_ARGUMENT, message);
        this.status = status;
    }

    static RefusedRequest stalled(String message) {
        return new RefusedRequest(408, message);
    }

    static RefusedRequest tooMany(String message) {
        return new RefusedRequest(429, message);
    }

    int status() {
        return status;
    }
}
