package dev.kiln.isolation;

import dev.kiln.KilnException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * The isolators of one kilnd, registered in one place (built by {@code StandardIsolators} in kilnd, by a test with
 * its own): found by the name users give with {@code --isolation} or by a Docker runtime name, listed for
 * {@code docker info}. The engine and the Docker face ask this registry and the {@link Isolation} descriptors instead
 * of naming isolations. An isolator whose runtime is missing stays registered and says why when asked for.
 */
public final class Isolators {

    private final Map<String, Isolator> byName = new LinkedHashMap<>();
    private final Map<String, Isolator> byRuntime = new LinkedHashMap<>();

    /** {@code isolators} in the order they are listed; names and runtime names must not repeat. */
    public Isolators(List<Isolator> isolators) {
        for (Isolator i : isolators) {
            Isolation d = i.isolation();
            if (byName.putIfAbsent(d.name(), i) != null) {
                throw new IllegalArgumentException("two isolators named " + d.name());
            }
            for (String runtime : d.runtimes()) {
                if (byRuntime.putIfAbsent(runtime, i) != null) {
                    throw new IllegalArgumentException("two isolators answer to runtime " + runtime);
                }
            }
        }
    }

    /** Every registered isolator, available or not, in registration order. */
    public List<Isolator> all() {
        return List.copyOf(byName.values());
    }

    /** The isolators that can run sandboxes on this host now. */
    public List<Isolator> available() {
        return byName.values().stream().filter(i -> i.availability().available()).toList();
    }

    public Optional<Isolator> find(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    /** The isolator named {@code name}, refused with the names there are. */
    public Isolator named(String name) {
        Isolator i = byName.get(name);
        if (i == null) {
            throw KilnException.invalid("unknown isolation \"" + name + "\" (available: "
                    + String.join(", ", byName.keySet().stream().sorted().toList()) + ")");
        }
        return i;
    }

    /**
     * The isolator a create asks for: {@code isolation} when given (not {@code default}), else the one the Docker
     * runtime name {@code runtime} picks, else {@code defaultIsolation}. It may be unavailable: see
     * {@link Isolator#availability()}.
     */
    public Isolator select(String isolation, String runtime, String defaultIsolation) {
        if (isolation != null && !isolation.isEmpty() && !isolation.equals("default")) {
            return named(isolation);
        }
        if (runtime != null && !runtime.isEmpty()) {
            Isolator i = byRuntime.get(runtime);
            if (i == null) {
                List<String> known = new ArrayList<>();
                byName.values().forEach(x -> known.add(String.join(", ", x.isolation().runtimes()) + " for "
                        + x.isolation().name()));
                throw KilnException.invalid("unknown runtime \"" + runtime + "\" (kiln knows " + String.join("; ",
                        known) + ")");
            }
            return i;
        }
        return named(defaultIsolation);
    }

    /**
     * Refuses options the isolation does not take (naming the isolations that do), then lets the isolator check the
     * values of its own; one line each, before anything is pulled or written.
     */
    public void check(Isolator isolator, SandboxOptions options) {
        Isolation isolation = isolator.isolation();
        List<Isolation.Option> unsupported = options.unsupportedBy(isolation);
        if (!unsupported.isEmpty()) {
            Isolation.Option o = unsupported.getFirst();
            String takers = names(i -> i.isolation().options().contains(o));
            throw KilnException.invalid(o.flag() + (takers.isEmpty() ? " is not supported by any isolation here"
                    : " is for the " + takers + " isolation") + " (this sandbox's is " + isolation.name() + ")");
        }
        isolator.check(options);
    }

    /** The names of the isolators that pass {@code test}, as words ("vm", "container or gvisor"); empty for none. */
    public String names(Predicate<Isolator> test) {
        List<String> names = byName.values().stream().filter(test).map(i -> i.isolation().name()).toList();
        if (names.size() <= 1) {
            return names.isEmpty() ? "" : names.getFirst();
        }
        return String.join(", ", names.subList(0, names.size() - 1)) + " or " + names.getLast();
    }
}
