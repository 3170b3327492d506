package dev.kiln.image;

import dev.kiln.KilnException;

import java.util.regex.Pattern;

/**
 * A normalised image reference, as Docker spells it: {@code busybox} is {@code docker.io/library/busybox:latest}.
 * Exactly one of {@code tag} and {@code digest} identifies the content ({@code name:tag@digest} keeps the digest).
 */
public record ImageRef(String registry, String repository, String tag, Digest digest) {

    public static final String DOCKER_HUB = "docker.io";
    private static final Pattern REPO = Pattern.compile("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*");
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    /**
     * The distribution reference grammar's domain: DNS-style components joined by dots, or a bracketed IPv6 address,
     * then an optional port (checked to be 1-65535 after).
     */
    private static final String DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    private static final Pattern DOMAIN = Pattern.compile("(?:" + DOMAIN_COMPONENT + "(?:\\." + DOMAIN_COMPONENT
            + ")*|\\[[0-9A-Fa-f:]+])(?::([0-9]{1,5}))?");
    /** The grammar's limit on a name, registry and repository together. */
    private static final int NAME_MAX = 255;

    public static ImageRef parse(String ref) {
        if (ref == null || ref.isBlank()) {
            throw KilnException.invalid("empty image reference");
        }
        String rest = ref;
        Digest digest = null;
        int at = rest.indexOf('@');
        if (at >= 0) {
            digest = Digest.parse(rest.substring(at + 1));
            rest = rest.substring(0, at);
        }
        String tag = null;
        int colon = rest.lastIndexOf(':');
        if (colon > rest.lastIndexOf('/')) {
            tag = rest.substring(colon + 1);
            rest = rest.substring(0, colon);
            if (!TAG.matcher(tag).matches()) {
                throw KilnException.invalid("invalid tag " + KilnException.quote(tag) + " in image reference "
                        + KilnException.quote(ref) + " (a tag is up to 128 letters, digits, '_', '.' and '-')");
            }
        }
        String registry = DOCKER_HUB;
        int slash = rest.indexOf('/');
        if (slash > 0) {
            String first = rest.substring(0, slash);
            if (first.contains(".") || first.contains(":") || first.equals("localhost")) {
                registry = registry(first, ref);
                rest = rest.substring(slash + 1);
            }
        }
        if (registry.equals("index.docker.io") || registry.equals("registry-1.docker.io")) {
            registry = DOCKER_HUB;
        }
        if (registry.equals(DOCKER_HUB) && !rest.contains("/")) {
            rest = "library/" + rest;
        }
        if (!REPO.matcher(rest).matches()) {
            throw KilnException.invalid("invalid image reference " + KilnException.quote(ref)
                    + " (repository names are lowercase letters, digits and separators)");
        }
        if (registry.length() + 1 + rest.length() > NAME_MAX) {
            throw KilnException.invalid("invalid image reference " + KilnException.quote(ref) + ": the name is longer "
                    + "than " + NAME_MAX + " characters");
        }
        if (tag == null && digest == null) {
            tag = "latest";
        }
        return new ImageRef(registry, rest, tag, digest);
    }

    /** The registry part of {@code ref}: a host name or IP address with an optional port 1-65535. */
    private static String registry(String domain, String ref) {
        java.util.regex.Matcher m = DOMAIN.matcher(domain);
        boolean valid = m.matches();
        if (valid && m.group(1) != null) {
            int port = Integer.parseInt(m.group(1));
            valid = port >= 1 && port <= 65535;
        }
        if (!valid) {
            throw KilnException.invalid("invalid image reference " + KilnException.quote(ref) + ": "
                    + KilnException.quote(domain) + " is not a registry (a host name or IP address, optionally "
                    + "followed by :PORT with PORT 1-65535)");
        }
        return domain;
    }

    /** Docker's separate {@code tag} parameter: refused unless it is a tag by itself (no {@code :} or {@code /}). */
    public static String tag(String tag) {
        if (!TAG.matcher(tag).matches()) {
            throw KilnException.invalid("invalid tag " + KilnException.quote(tag)
                    + " (a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-')");
        }
        return tag;
    }

    /** What the registry's manifest endpoint takes: the digest if pinned, else the tag. */
    public String reference() {
        return digest != null ? digest.toString() : tag;
    }

    /** The name without tag or digest: {@code docker.io/library/busybox}. */
    public String name() {
        return registry + "/" + repository;
    }

    /** The host the distribution API lives on (Docker Hub's API host differs from its name). */
    public String apiHost() {
        return registry.equals(DOCKER_HUB) ? "registry-1.docker.io" : registry;
    }

    public ImageRef withDigest(Digest d) {
        return new ImageRef(registry, repository, tag, d);
    }

    /** Docker's short form: {@code busybox:latest}, {@code 127.0.0.1:5000/x:1}. */
    public String familiar() {
        String n = registry.equals(DOCKER_HUB)
                ? (repository.startsWith("library/") ? repository.substring(8) : repository)
                : name();
        return n + (tag != null ? ":" + tag : "") + (digest != null && tag == null ? "@" + digest : "");
    }

    @Override
    public String toString() {
        return name() + (tag != null ? ":" + tag : "") + (digest != null ? "@" + digest : "");
    }
}
