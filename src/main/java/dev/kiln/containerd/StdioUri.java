package dev.kiln.containerd;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.URI;
import java.nio.file.Path;

/**
 * One stdio path of a Create or Exec request as containerd defines it: empty (none: the sandbox task's NullIO), a
 * fifo path the client made and opened (no scheme, or {@code fifo://}), {@code file:///path} (append to a file), or
 * {@code binary:///path?k=v} (a logging program: {@link BinaryLogger}).
 */
record StdioUri(Kind kind, Path path, URI uri) {

    enum Kind { NONE, FIFO, FILE, BINARY }

    static StdioUri parse(String value) {
        if (value == null || value.isEmpty()) return new StdioUri(Kind.NONE, null, null);
        if (!value.contains("://")) return new StdioUri(Kind.FIFO, Path.of(value), null);
        URI uri = URI.create(value);
        return switch (uri.getScheme()) {
            case "fifo" -> new StdioUri(Kind.FIFO, Path.of(uri.getPath()), uri);
            case "file" -> new StdioUri(Kind.FILE, Path.of(uri.getPath()), uri);
            case "binary" -> new StdioUri(Kind.BINARY, Path.of(uri.getPath()), uri);
            default -> throw TtrpcServer.RpcError.invalid("stdio " + value + ": scheme " + uri.getScheme()
                    + " is not supported by containerd-shim-kiln-v2 (use a fifo, file:// or binary://)");
        };
    }

    /**
     * Points {@code pb}'s stdin at this stdin path (a fifo) or at /dev/null. A fifo is held open read-write while the
     * child opens it read-only, so that open does not wait for the client's writer; the caller closes the returned
     * hold right after the start, so the process sees EOF when the client closes. Null when nothing is held.
     */
    RandomAccessFile redirectStdin(ProcessBuilder pb) throws IOException {
        if (kind != Kind.FIFO) {
            pb.redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
            return null;
        }
        RandomAccessFile hold = new RandomAccessFile(path.toFile(), "rw");
        pb.redirectInput(ProcessBuilder.Redirect.from(path.toFile()));
        return hold;
    }
}
