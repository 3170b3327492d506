package dev.kiln.api.docker;

import dev.kiln.KilnException;

import java.math.BigDecimal;
import java.time.Instant;
import java.time.format.DateTimeParseException;

/** Docker's time parameters ({@code since}, {@code until}): Unix seconds with optional fraction, or RFC 3339. */
final class Times {
    private Times() {
    }

    static Instant parse(String value) {
        if (value == null || value.isEmpty()) {
            return null;
        }
        if (value.matches("-?\\d+(\\.\\d{1,9})?")) {
            BigDecimal seconds = new BigDecimal(value);
            long whole = seconds.longValue();
            int nanos = seconds.subtract(BigDecimal.valueOf(whole)).movePointRight(9).intValue();
            return Instant.ofEpochSecond(whole, nanos);
        }
        try {
            return Instant.parse(value);
        } catch (DateTimeParseException e) {
            throw KilnException.invalid("invalid time \"" + value + "\" (use Unix seconds or RFC 3339)");
        }
    }

    /** Docker's RFC 3339 with nine fractional digits. */
    static String rfc3339Nano(Instant t) {
        return java.time.format.DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSSSSSSS'Z'")
                .withZone(java.time.ZoneOffset.UTC).format(t);
    }
}
