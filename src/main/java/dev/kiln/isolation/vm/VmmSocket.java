package dev.kiln.isolation.vm;

import dev.kiln.LibcCall;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;

/**
 * A socket the VMM made in its own directory (QMP's, Firecracker's API): a VMM a guest took over can put a link to
 * any root-only socket of the host there (kilnd's, containerd's) for kiln to connect to as root. So the path is
 * opened {@code O_PATH|O_NOFOLLOW} (a link opens as itself, which no connect reaches) and connected through
 * {@code /proc/self/fd/N} — a short path too, whatever the sandbox directory's length.
 */
final class VmmSocket {
    private VmmSocket() {
    }

    static void connect(SocketChannel channel, Path socket) throws IOException {
        int fd = LibcCall.open(socket.toString(), LibcCall.O_PATH | LibcCall.O_NOFOLLOW | LibcCall.O_CLOEXEC);
        if (fd < 0) throw new IOException(socket + ": " + LibcCall.describe(-fd));
        try {
            channel.connect(UnixDomainSocketAddress.of("/proc/self/fd/" + fd));
        } finally {
            LibcCall.close(fd);
        }
    }
}
