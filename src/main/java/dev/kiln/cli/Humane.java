package dev.kiln.cli;

import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;

/** Sizes and ages as Docker prints them: "4.2MB", "3 days ago" (decimal units, like Docker). */
final class Humane {
    private Humane() {
    }

    static String size(long bytes) {
        String[] units = {"B", "kB", "MB", "GB", "TB"};
        double v = bytes;
        int u = 0;
        while (v >= 1000 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        return (u == 0 ? String.valueOf(bytes) : String.format("%.3g", v)) + units[u];
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
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        // four significant digits without trailing zeros, as Docker's units.BytesSize: 64MiB, 1.234GiB
        return new java.math.BigDecimal(v).round(new java.math.MathContext(4)).stripTrailingZeros().toPlainString()
                + units[u];
    }
}
