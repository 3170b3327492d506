package dev.kiln.image;

import dev.kiln.KilnException;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.regex.Pattern;

/** A validated content digest. Only sha256 is accepted: it is the only algorithm the OCI spec requires. */
public record Digest(String hex) implements Comparable<Digest> {

    private static final Pattern HEX = Pattern.compile("[a-f0-9]{64}");

    public Digest {
        if (hex == null || !HEX.matcher(hex).matches()) {
            throw KilnException.invalid("invalid sha256 digest \"" + hex + "\"");
        }
    }

    /** Parses {@code sha256:<64 hex>}. */
    public static Digest parse(String s) {
        if (s == null || !s.startsWith("sha256:")) {
            throw KilnException.invalid("invalid digest \"" + s + "\" (only sha256:<hex> is supported)");
        }
        return new Digest(s.substring("sha256:".length()));
    }

    public static Digest of(byte[] bytes) {
        return fromHash(sha256().digest(bytes));
    }

    public static Digest fromHash(byte[] sha256) {
        return new Digest(HexFormat.of().formatHex(sha256));
    }

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("JDK without SHA-256", e);
        }
    }

    /** The first 12 hex characters, as Docker shows image IDs. */
    public String shortId() {
        return hex.substring(0, 12);
    }

    @Override
    public String toString() {
        return "sha256:" + hex;
    }

    @Override
    public int compareTo(Digest o) {
        return hex.compareTo(o.hex);
    }
}
