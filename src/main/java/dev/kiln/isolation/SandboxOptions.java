package dev.kiln.isolation;

/**
 * What a create asks of its isolation beyond the common spec, for {@link Isolator#check} before anything is pulled
 * or written: the Docker runtime name, the guest kernel and writable-disk size (options only some isolations take)
 * and the network mode.
 *
 * @param runtime  {@code --runtime} / {@code HostConfig.Runtime}; null for the isolation's default
 * @param kernel   {@code --kernel} as given; null for none
 * @param diskSize {@code --disk-size} in bytes; 0 for none
 * @param settings the {@code docker run} flags past these, each refused by the isolations that cannot honour it
 */
public record SandboxOptions(String runtime, String kernel, long diskSize, SandboxNetwork.Mode network,
                             RunSettings settings) {

    public SandboxOptions {
        settings = settings == null ? RunSettings.NONE : settings;
    }

    /** Options with none of {@link RunSettings}'s flags. */
    public SandboxOptions(String runtime, String kernel, long diskSize, SandboxNetwork.Mode network) {
        this(runtime, kernel, diskSize, network, null);
    }

    /** The options given that {@code isolation} does not take, by the flag's name. */
    public java.util.List<Isolation.Option> unsupportedBy(Isolation isolation) {
        java.util.List<Isolation.Option> out = new java.util.ArrayList<>();
        if (kernel != null && !isolation.options().contains(Isolation.Option.KERNEL)) {
            out.add(Isolation.Option.KERNEL);
        }
        if (diskSize != 0 && !isolation.options().contains(Isolation.Option.DISK_SIZE)) {
            out.add(Isolation.Option.DISK_SIZE);
        }
        return out;
    }
}
