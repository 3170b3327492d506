package dev.kiln.network;

import dev.kiln.KilnException;

/** {@code --network}: {@code none} (a namespace of its own with loopback only) or {@code kiln} (the kiln bridge). */
public enum NetworkMode {
    NONE, KILN;

    /** Null or empty: {@code none}, kiln's default. */
    public static NetworkMode parse(String value) {
        if (value == null || value.isEmpty() || value.equals("none")) {
            return NONE;
        }
        if (value.equals("kiln") || value.equals("bridge") || value.equals("default")) {
            return KILN;
        }
        throw KilnException.invalid("unknown network \"" + value + "\" (kiln knows none and kiln; host and "
                + "user-defined networks are not supported yet)");
    }
}
