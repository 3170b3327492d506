package dev.kiln.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.isolation.Resources;

/**
 * {@code kiln update} / {@code docker update}: new limits and restart policy for a sandbox; a null field stays as it
 * is. {@code nanoCpus} and {@code memory} 0 mean "unchanged" as in Docker; {@code pidsLimit} 0 or -1 lifts the limit.
 */
public record SandboxUpdate(Long nanoCpus, Long memory, Long pidsLimit, RestartPolicy restart) {

    private static final ObjectMapper JSON = new ObjectMapper();
    /** Docker's smallest memory limit. */
    static final long MINIMUM_MEMORY = 6L << 20;

    public SandboxUpdate {
        if (memory != null && memory != 0 && memory < MINIMUM_MEMORY) {
            throw KilnException.invalid("Minimum memory limit allowed is 6MB");
        }
        if (nanoCpus != null && nanoCpus != 0) {
            int cpus = Runtime.getRuntime().availableProcessors();
            if (nanoCpus < 10_000_000L || nanoCpus > cpus * 1_000_000_000L) {
                throw KilnException.invalid("range of CPUs is from 0.01 to " + cpus + ".00, as there are only "
                        + cpus + " CPUs available");
            }
        }
    }

    /** The limits after the update, from the ones before. */
    Resources over(Resources now) {
        return new Resources(nanoCpus == null || nanoCpus == 0 ? now.nanoCpus() : nanoCpus,
                memory == null || memory == 0 ? now.memoryBytes() : memory,
                pidsLimit == null ? now.pidsLimit() : Math.max(0, pidsLimit));
    }

    /**
     * The config with the update applied, copied through its JSON form so that this class need not name the record's
     * other components.
     */
    SandboxConfig applyTo(SandboxConfig c) {
        Resources r = over(new Resources(c.nanoCpus(), c.memory(), c.pidsLimit()));
        ObjectNode node = JSON.valueToTree(c);
        node.put("nanoCpus", r.nanoCpus());
        node.put("memory", r.memoryBytes());
        node.put("pidsLimit", r.pidsLimit());
        if (restart != null) {
            Supervision now = Supervision.of(c);
            node.set("supervision", JSON.valueToTree(new Supervision(restart, now.healthcheck())));
        }
        try {
            return JSON.treeToValue(node, SandboxConfig.class);
        } catch (java.io.IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot update the sandbox's config: " + e.getMessage());
        }
    }
}
