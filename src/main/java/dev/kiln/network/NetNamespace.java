package dev.kiln.network;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A named network namespace made with {@code ip netns add} ({@code /var/run/netns/NAME}, a bind mount that keeps it
 * alive with no process in it). Entering it is for runc (the OCI config's namespace {@code path}) and for the CNI
 * plugins (setns); never {@code ip netns exec}, which remounts /sys and hides the cgroups.
 */
record NetNamespace(String name) {

    static final Path DIR = Path.of("/var/run/netns");

    /** kiln's name for a sandbox's namespace: {@code kiln-} and the first 12 hex digits of its id. */
    static NetNamespace of(String sandboxId) {
        return new NetNamespace("kiln-" + sandboxId.substring(0, 12));
    }

    Path path() {
        return DIR.resolve(name);
    }

    boolean exists() {
        return Files.exists(path());
    }

    void add() {
        if (!exists()) {
            Exec.run(List.of("ip", "netns", "add", name), null).orFail("cannot create network namespace " + name);
        }
    }

    void delete() {
        if (exists()) {
            Exec.run(List.of("ip", "netns", "delete", name), null).orFail("cannot delete network namespace " + name);
        }
    }
}
