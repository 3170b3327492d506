package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.engine.volume.Mounts;
import dev.kiln.engine.volume.Volume;
import dev.kiln.engine.volume.Volumes;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Volumes as users manage them ({@code kiln volume}, Docker's {@code /volumes}): the store's operations with the rules
 * that need the sandboxes: a volume in use by any sandbox (running or not) is not removed (CONFLICT: 409), and
 * "dangling" means used by none.
 */
public final class SandboxVolumes {
    private final Volumes volumes;
    private final Sandboxes sandboxes;

    SandboxVolumes(Volumes volumes, Sandboxes sandboxes) {
        this.volumes = volumes;
        this.sandboxes = sandboxes;
    }

    public Volume create(String name, Map<String, String> labels, Map<String, String> options) {
        return volumes.create(name, labels, options);
    }

    public List<Volume> list() {
        return volumes.list();
    }

    public Volume get(String name) {
        return volumes.get(name);
    }

    public java.nio.file.Path data(String name) {
        return volumes.data(name);
    }

    public long size(String name) {
        return volumes.size(name);
    }

    /** The sandboxes that mount the volume, whatever their state. */
    public List<Sandbox> users(String name) {
        return sandboxes.list().stream().filter(s -> Mounts.of(s.config().mounts()).uses(name)).toList();
    }

    public void remove(String name, boolean force) {
        Volume v = volumes.get(name);
        synchronized (this) {
            List<Sandbox> users = users(v.name());
            if (!users.isEmpty()) {
                throw KilnException.conflict("volume " + v.name() + " is in use by sandbox " + String.join(", ",
                        users.stream().map(Sandbox::name).toList()) + " (remove " + (users.size() == 1 ? "it" : "them")
                        + " first)");
            }
            volumes.remove(v.name());
        }
    }

    /**
     * Docker's volume prune: the volumes no sandbox uses, anonymous ones only unless {@code all} (Docker 23's rule);
     * {@code keep} filters (labels) decide further. Returns what went, with the bytes each held.
     */
    public Map<String, Long> prune(boolean all, java.util.function.Predicate<Volume> keep) {
        Map<String, Long> removed = new java.util.LinkedHashMap<>();
        for (Volume v : new ArrayList<>(volumes.list())) {
            if ((!all && !v.anonymous()) || !keep.test(v)) {
                continue;
            }
            synchronized (this) {
                if (users(v.name()).isEmpty()) {
                    long size = volumes.size(v.name());
                    volumes.remove(v.name());
                    removed.put(v.name(), Math.max(size, 0));
                }
            }
        }
        return removed;
    }
}
