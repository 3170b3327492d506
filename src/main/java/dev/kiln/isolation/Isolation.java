package dev.kiln.isolation;

import java.util.List;
import java.util.Set;

/**
 * What an isolation is and what it can do, as data the engine and the Docker face read instead of naming isolations:
 * the name users pick with {@code --isolation}, the Docker runtime names that pick it, the networks it can join, when
 * {@code docker cp} works, the volume kinds it mounts, and the per-sandbox options it takes. The isolator checks the
 * values of those options itself ({@link Isolator#check}).
 *
 * @param name     the name users pick with {@code --isolation} ({@code container}, {@code gvisor}, {@code vm})
 * @param runtimes Docker runtime names ({@code --runtime}, {@code HostConfig.Runtime}) that pick this isolation; the
 *                 first is the one Docker clients are shown back (inspect, {@code docker info}), and
 *                 {@code kiln-NAME} is always among them
 * @param networks the network modes its sandboxes can have; with {@code BRIDGE}, the kiln bridge is the default
 * @param copy     when {@code docker cp} works
 * @param volumes  the mount kinds it can give a sandbox ({@code bind}, {@code volume}, {@code tmpfs})
 * @param options  the per-sandbox options beyond the common spec that it takes
 */
public record Isolation(String name, List<String> runtimes, Set<SandboxNetwork.Mode> networks, FileCopy copy,
                        Set<String> volumes, Set<Option> options) {

    /** Options only some isolations take, by the flag users give. */
    public enum Option {
        KERNEL("--kernel"),
        DISK_SIZE("--disk-size");

        private final String flag;

        Option(String flag) {
            this.flag = flag;
        }

        public String flag() {
            return flag;
        }
    }

    public Isolation {
        runtimes = List.copyOf(runtimes);
        networks = Set.copyOf(networks);
        volumes = Set.copyOf(volumes);
        options = Set.copyOf(options);
        if (runtimes.isEmpty() || !runtimes.contains("kiln-" + name)) {
            throw new IllegalArgumentException("isolation " + name + " must answer to kiln-" + name);
        }
    }

    /** The Docker runtime name clients see for its sandboxes ({@code runc}, {@code runsc}, {@code kiln-vm}). */
    public String dockerRuntime() {
        return runtimes.getFirst();
    }
}
