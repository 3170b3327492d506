package dev.kiln.cli;

import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;

/** Sizes and ages as Docker prints them: "4.2MB", "3 days ago" (decimal units, like Docker). */
final class Humane {
    private Humane() {
    }

    static String size(long bytes) {
        return scaled(bytes, 1000, "B", "kB", "MB", "GB", "TB", 3);
    }

    static String since(String isoTime) {
        if (isoTime == null) {
            return "N/A";
        }
        try {
            Duration d = Duration.between(Instant.parse(isoTime), Instant.now());
            if (d.toDays() >= 365) {
                return d.toDays() / 365 + " years ago";
            }
            if (d.toDays() >= 2) {
                return d.toDays() + " days ago";
            }
            if (d.toHours() >= 2) {
                return d.toHours() + " hours ago";
            }
            if (d.toMinutes() >= 2) {
                return d.toMinutes() + " minutes ago";
            }
            return d.toSeconds() < 60 ? "Less than a minute ago" : "About a minute ago";
        } catch (DateTimeParseException e) {
            return "N/A";
        }
    }

    /** Memory as Docker's stats prints it: binary units, "12.5MiB". */
    static String binarySize(long bytes) {
        return scaled(bytes, 1024, "B", "KiB", "MiB", "GiB", "TiB", 4);
    }

    /** {@code digits} significant digits without trailing zeros, as Docker's units package: 64MiB, 1.234GiB. */
    private static String scaled(long bytes, int base, String b, String k, String m, String g, String t, int digits) {
        String[] units = {b, k, m, g, t};
        double v = bytes;
        int u = 0;
        while (v >= base && u < units.length - 1) {
            v /= base;
            u++;
        }
        return new java.math.BigDecimal(v).round(new java.math.MathContext(digits)).stripTrailingZeros()
                .toPlainString() + units[u];
    }
}
