package dev.kiln.containerd;

import java.net.URI;
import java.nio.file.Path;

/**
 * One stdio path of a Create or Exec request as containerd defines it: empty (none: the sandbox task's NullIO), a
 * fifo path the client made and opened (no scheme), {@code file:///path} (append to a file), or {@code binary://}
 * (a logging program; not supported by this shim yet, refused with InvalidArgument).
 */
record StdioUri(Kind kind, Path path) {

    enum Kind { NONE, FIFO, FILE }

    static StdioUri parse(String value) {
        if (value == null || value.isEmpty()) return new StdioUri(Kind.NONE, null);
        if (!value.contains("://")) return new StdioUri(Kind.FIFO, Path.of(value));
        URI uri = URI.create(value);
        return switch (uri.getScheme()) {
            case "fifo" -> new StdioUri(Kind.FIFO, Path.of(uri.getPath()));
            case "file" -> new StdioUri(Kind.FILE, Path.of(uri.getPath()));
            default -> throw TtrpcServer.RpcError.invalid("stdio " + value + ": scheme " + uri.getScheme()
                    + " is not supported by containerd-shim-kiln-v2 (use a fifo or file://)");
        };
    }
}
