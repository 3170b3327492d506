package dev.kiln.image;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.kiln.KilnException;

/** An OCI platform (os/architecture[/variant]); {@link #host()} is what kiln pulls when none is asked for. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Platform(@JsonProperty("os") String os,
                       @JsonProperty("architecture") String architecture,
                       @JsonProperty("variant") String variant) {

    public static Platform parse(String s) {
        String[] p = s.split("/");
        if (p.length < 2 || p.length > 3 || p[0].isEmpty() || p[1].isEmpty()) {
            throw KilnException.invalid("invalid platform \"" + s + "\" (expected os/arch[/variant], e.g. linux/amd64)");
        }
        return new Platform(p[0], normaliseArch(p[1]), p.length == 3 ? p[2] : null);
    }

    public static Platform host() {
        return new Platform("linux", normaliseArch(System.getProperty("os.arch")), null);
    }

    private static String normaliseArch(String arch) {
        return switch (arch) {
            case "x86_64", "x86-64" -> "amd64";
            case "aarch64" -> "arm64";
            default -> arch;
        };
    }

    /** True when an index entry for {@code candidate} can run on this platform (variant only checked if asked). */
    public boolean matches(Platform candidate) {
        return candidate != null && os.equals(candidate.os) && architecture.equals(candidate.architecture)
                && (variant == null || variant.equals(candidate.variant));
    }

    @Override
    public String toString() {
        return os + "/" + architecture + (variant == null ? "" : "/" + variant);
    }
}
