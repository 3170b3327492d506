package dev.kiln.engine;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Pattern;

/** Sandbox IDs (64 random hex characters, as Docker's) and names (given, or Docker-style adjective_noun). */
final class Names {
    private Names() {
    }

    private static final SecureRandom RANDOM = new SecureRandom();
    static final Pattern VALID = Pattern.compile("[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}");
    private static final List<String> ADJECTIVES = List.of("amber", "brave", "calm", "deft", "eager", "fond",
            "glad", "hardy", "keen", "lucid", "merry", "nimble", "plucky", "quiet", "rapid", "sturdy", "tidy", "vivid",
            "warm", "zesty");
    private static final List<String> NOUNS = List.of("anvil", "brick", "cinder", "crucible", "ember", "flue",
            "forge", "glaze", "hearth", "ingot", "kiln", "lintel", "mortar", "oven", "pottery", "slag", "tile",
            "vessel", "vent", "wick");

    static String newId() {
        byte[] b = new byte[32];
        RANDOM.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    static String randomName() {
        return ADJECTIVES.get(RANDOM.nextInt(ADJECTIVES.size())) + "_" + NOUNS.get(RANDOM.nextInt(NOUNS.size()))
                + RANDOM.nextInt(100);
    }
}
