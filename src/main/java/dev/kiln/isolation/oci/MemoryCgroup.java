package dev.kiln.isolation.oci;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * A sandbox's memory cgroup for host processes kiln starts itself rather than through a runtime: the VM relay and its
 * VMM. It is kiln's own {@code kiln/<id>} ({@link SandboxCgroup#parentPath}), in the hierarchy that has the memory
 * controller (cgroup v1's memory hierarchy here, on this v1 + v2 hybrid; else the unified one), with a memory limit;
 * the relay writes itself into its {@code cgroup.procs} before it starts the VMM ({@code kiln-shim --relay-vm
 * --cgroup DIR}), so both are held by the limit. {@link #remove} takes it away with the sandbox's other cgroups.
 */
public final class MemoryCgroup {

    private MemoryCgroup() {
    }

    /**
     * Creates (or reuses) {@code kiln/<id>} with {@code limitBytes} as its memory limit; its directory. Fails where
     * the memory controller cannot be had below kilnd's cgroup (a cgroup v2 host that does not delegate it).
     */
    public static Path create(String id, long limitBytes) throws IOException {
        String relative = SandboxCgroup.parentPath(id);
        Optional<Path> v1 = Cgroups.memoryV1(relative);
        if (v1.isPresent()) {
            Files.createDirectories(v1.get());
            Files.writeString(v1.get().resolve("memory.limit_in_bytes"), Long.toString(limitBytes));
            return v1.get();
        }
        Cgroups.Hierarchy unified = Cgroups.hierarchies().stream().filter(h -> h.controllers().isEmpty()).findFirst()
                .orElseThrow(() -> new IOException("no cgroup hierarchy has the memory controller here"));
        Path dir = unified.dir(relative);
        Files.createDirectories(dir);
        if (!Files.exists(dir.resolve("memory.max"))) {
            // kiln/ holds no process, so it may hand the controller down if kilnd's own cgroup has it to give
            try {
                Files.writeString(dir.getParent().resolve("cgroup.subtree_control"), "+memory");
            } catch (IOException e) {
                // reported below
            }
        }
        if (!Files.exists(dir.resolve("memory.max"))) {
            throw new IOException("the memory controller is not delegated to " + dir.getParent());
        }
        Files.writeString(dir.resolve("memory.max"), Long.toString(limitBytes));
        return dir;
    }

    /** Removes the sandbox's cgroups (as {@link SandboxCgroup#remove}); those still in use. */
    public static List<Path> remove(String id) {
        return SandboxCgroup.remove(id);
    }
}
