package dev.kiln.engine.volume;

import java.util.List;
import java.util.function.Predicate;

/**
 * The mounts of one sandbox beyond its root: bind mounts, named and anonymous volumes, tmpfs. Parsed from the flags
 * and Docker fields by {@link MountSyntax}; completed at create by {@link Volumes#prepare}. Null in a sandbox's config
 * means none.
 */
public record Mounts(List<MountSpec> list) {

    public static final Mounts NONE = new Mounts(List.of());

    public Mounts {
        list = list == null ? List.of() : List.copyOf(list);
    }

    public static Mounts of(Mounts m) {
        return m == null ? NONE : m;
    }

    @com.fasterxml.jackson.annotation.JsonIgnore
    public boolean isEmpty() {
        return list.isEmpty();
    }

    /** The mounts asked for one way ({@link MountSpec#origin}), for inspect to show them back where they came. */
    public List<MountSpec> from(String origin) {
        return filter(m -> origin.equals(m.origin()));
    }

    public List<MountSpec> filter(Predicate<MountSpec> p) {
        return list.stream().filter(p).toList();
    }

    /** Does it mount volume {@code name}. */
    public boolean uses(String name) {
        return list.stream().anyMatch(m -> m.volume() && name.equals(m.source()));
    }
}
