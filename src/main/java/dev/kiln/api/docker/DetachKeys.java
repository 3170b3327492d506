package dev.kiln.api.docker;

import dev.kiln.KilnException;

import java.io.ByteArrayOutputStream;
import java.util.Arrays;

/**
 * Docker's detach sequence on an attach's stdin ({@code detachKeys}, default {@code ctrl-p,ctrl-q}): once the client
 * types it, the attach ends and the process runs on with its stdin open. Bytes that begin the sequence are held back
 * until they turn out not to be it, then forwarded, so a lone ctrl-p still reaches the process.
 */
final class DetachKeys {

    static final String DEFAULT = "ctrl-p,ctrl-q";

    private final byte[] keys;
    private int matched;

    private DetachKeys(byte[] keys) {
        this.keys = keys;
    }

    /** Docker's syntax: comma-separated keys, each one character or {@code ctrl-X} (a-z, @, [, \, ], ^, _). */
    static DetachKeys parse(String spec) {
        String s = spec == null || spec.isEmpty() ? DEFAULT : spec;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (String key : s.split(",")) {
            if (key.length() == 1) {
                out.write(key.charAt(0));
            } else if (key.length() == 6 && key.startsWith("ctrl-")) {
                char c = Character.toLowerCase(key.charAt(5));
                if (c >= 'a' && c <= 'z') {
                    out.write(c - 'a' + 1);
                } else if ("@[\\]^_".indexOf(c) >= 0) {
                    out.write(c == '@' ? 0 : "[\\]^_".indexOf(c) + 27);
                } else {
                    throw KilnException.invalid("Invalid escape keys (" + key + ") provided");
                }
            } else {
                throw KilnException.invalid("Invalid escape keys (" + key + ") provided");
            }
        }
        return new DetachKeys(out.toByteArray());
    }

    /** What of {@code input} goes on to the process; null once the sequence is complete (the client detaches). */
    byte[] filter(byte[] input) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(input.length);
        for (byte b : input) {
            if (b == keys[matched]) {
                matched++;
                if (matched == keys.length) {
                    return null;
                }
                continue;
            }
            out.write(keys, 0, matched); // a prefix that was not the sequence after all
            matched = 0;
            if (b == keys[0]) {
                matched = 1;
                if (keys.length == 1) {
                    return null;
                }
            } else {
                out.write(b);
            }
        }
        return out.toByteArray();
    }

    byte[] keys() {
        return Arrays.copyOf(keys, keys.length);
    }
}
