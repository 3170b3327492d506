package dev.kiln.isolation.oci;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A sandbox's pids cgroup for the VM relay and its VMM (beside {@link MemoryCgroup}): kiln's own {@code kiln/<id>} in
 * the hierarchy with the pids controller (cgroup v1's pids hierarchy on this v1 + v2 hybrid; else the unified one),
 * with {@code pids.max}, so a runaway VMM cannot fill the host's process table. The relay joins it with a second
 * {@code --cgroup DIR}; {@link MemoryCgroup#remove} takes it away with the rest.
 */
public final class PidsCgroup {

    private PidsCgroup() {
    }

    /** Creates (or reuses) {@code kiln/<id>} with {@code max} tasks at most; its directory. */
    public static Path create(String id, long max) throws IOException {
        String relative = SandboxCgroup.parentPath(id);
        Optional<Cgroups.Hierarchy> v1 = Cgroups.hierarchies().stream()
                .filter(h -> h.controllers().contains("pids")).findFirst();
        Path dir;
        if (v1.isPresent()) {
            dir = v1.get().dir(relative);
            Files.createDirectories(dir);
        } else {
            Cgroups.Hierarchy unified = Cgroups.hierarchies().stream().filter(h -> h.controllers().isEmpty())
                    .findFirst().orElseThrow(() -> new IOException("no cgroup hierarchy has the pids controller here"));
            dir = unified.dir(relative);
            Files.createDirectories(dir);
            if (!Files.exists(dir.resolve("pids.max"))) {
                try { // kiln/ holds no process, so it may hand the controller down
                    Files.writeString(dir.getParent().resolve("cgroup.subtree_control"), "+pids");
                } catch (IOException e) {
                    // reported below
                }
            }
            if (!Files.exists(dir.resolve("pids.max"))) {
                throw new IOException("the pids controller is not delegated to " + dir.getParent());
            }
        }
        Files.writeString(dir.resolve("pids.max"), Long.toString(max));
        return dir;
    }
}
