package dev.kiln.network;

import dev.kiln.KilnException;

/**
 * {@code --network} as asked: {@code none} (a namespace of its own with loopback only), {@code host} (the host's
 * namespace), {@code user} (a user-mode network inside the VMM) or a bridge network by name ({@code kiln}, alias
 * {@code bridge}/{@code default}, or one made with {@code kiln network create}).
 */
public record NetworkMode(Kind kind, String network) {

    public enum Kind { NONE, HOST, USER, BRIDGE }

    public static final NetworkMode KILN = new NetworkMode(Kind.BRIDGE, KilnNetwork.NAME);
    public static final NetworkMode NONE = new NetworkMode(Kind.NONE, null);

    /** {@code value} as typed; null or empty is {@code defaultMode}. */
    public static NetworkMode parse(String value, NetworkMode defaultMode) {
        if (value == null || value.isEmpty()) {
            return defaultMode;
        }
        return switch (value) {
            case "none" -> NONE;
            case "host" -> new NetworkMode(Kind.HOST, null);
            case "user", "slirp" -> new NetworkMode(Kind.USER, null);
            case "kiln", "bridge", "default" -> KILN;
            default -> {
                if (value.startsWith("container:")) {
                    throw KilnException.invalid("--network container:NAME is not supported");
                }
                if (!Networks.VALID_NAME.matcher(value).matches()) {
                    throw KilnException.invalid("invalid network name \"" + value
                            + "\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
                }
                yield new NetworkMode(Kind.BRIDGE, value);
            }
        };
    }

    public boolean bridged() {
        return kind == Kind.BRIDGE;
    }

    /** The name inspect shows in HostConfig.NetworkMode (the Docker face calls {@code kiln} "bridge"). */
    public String display() {
        return switch (kind) {
            case NONE -> "none";
            case HOST -> "host";
            case USER -> "user";
            case BRIDGE -> network;
        };
    }
}
