package dev.kiln.isolation.oci;

import dev.kiln.KilnException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The init {@code --init} runs as PID 1 of a container or gVisor sandbox: tini, statically linked (Debian's
 * {@code tini} package; Docker's own docker-init is the same program), bound read-only at Docker's path so that it
 * reaps orphaned zombies and passes signals on to the command, which runs as its child.
 */
final class TinyInit {
    private TinyInit() {
    }

    /** Where Docker puts its init in a container; kiln uses the same path. */
    static final String TARGET = "/sbin/docker-init";

    private static final List<Path> CANDIDATES = List.of(Path.of("/usr/bin/tini-static"),
            Path.of("/usr/local/bin/tini-static"), Path.of("/usr/bin/docker-init"), Path.of("/usr/libexec/docker/docker-init"));

    /** The static tini on this host; refused with what to install when there is none. */
    static Path locate() {
        for (Path p : CANDIDATES) {
            if (Files.isExecutable(p)) {
                return p;
            }
        }
        throw KilnException.invalid("--init needs a static tini on kilnd's host (apt-get install tini)");
    }
}
