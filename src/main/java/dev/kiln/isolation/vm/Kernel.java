package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.isolation.GuestKernels;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The guest kernel: its image (a bzImage for QEMU) and, when its drivers are modules, the modules directory whose
 * {@code modules.dep} says in which order they load.
 *
 * @param modulesDir null when the kernel has none on this host (everything must then be built in)
 */
public record Kernel(Path image, String version, Path modulesDir) {

    /**
     * What kiln-init needs from the kernel: virtio-mmio devices, block, serial port, network card, the image and root
     * filesystems, virtio-fs for shared directories. virtio_net is loaded at every boot, with a NIC or not: loading it once START says so would put the
     * module's load and the device's probe on the critical path of networked boots, which are the default.
     */
    static final List<String> NEEDED = List.of("virtio_mmio", "virtio_blk", "virtio_console", "virtio_net", "erofs",
            "overlay", "ext4", "fuse", "virtiofs"); // fuse, virtiofs: bind mounts and volumes (VirtioFs)

    /**
     * Modules only some sandboxes need: a kernel without them still boots every other VM (one with a share then
     * fails at its mount, in one line: "mounting kiln0 (virtiofs) on /data: No such device").
     */
    static final Set<String> OPTIONAL = Set.of("fuse", "virtiofs");

    /**
     * What kiln-init needs on Firecracker: the same, with the vsock transport (AF_VSOCK and its virtio driver: kiln's
     * control channel, docs/guest-protocol.md) instead of virtio_console, which Firecracker has no device for.
     */
    static final List<String> NEEDED_FIRECRACKER = List.of("virtio_mmio", "virtio_blk", "virtio_net", "vsock",
            "vmw_vsock_virtio_transport", "erofs", "overlay", "ext4");

    /**
     * {@code configured} if given, else the newest {@code /boot/vmlinuz-*-cloud-amd64}, else the newest
     * {@code /boot/vmlinuz-*}; its modules are under {@code /lib/modules/VERSION}.
     */
    public static Kernel locate(Path configured) {
        Path image = configured != null ? configured : newest(Path.of("/boot"));
        if (!Files.isRegularFile(image)) {
            throw KilnException.notFound("kernel " + image + " not found (install linux-image-cloud-amd64 or pass a kernel)");
        }
        String name = image.getFileName().toString();
        String version = name.startsWith("vmlinuz-") ? name.substring("vmlinuz-".length()) : name;
        Path modules = Path.of("/lib/modules", version);
        return new Kernel(image, version, Files.isRegularFile(modules.resolve("modules.dep")) ? modules : null);
    }

    /** The kernels in /boot and the configured one, by version; the one a VM boots without --kernel is marked. */
    public static List<GuestKernels.Known> known(Path configured) {
        Path chosen;
        try {
            chosen = locate(configured).image();
        } catch (KilnException e) {
            chosen = null; // none to boot: the list says so by marking none
        }
        List<Path> images = new java.util.ArrayList<>();
        try (Stream<Path> files = Files.list(Path.of("/boot"))) {
            files.filter(p -> p.getFileName().toString().startsWith("vmlinuz-")).forEach(images::add);
        } catch (IOException e) {
            // no /boot: only a configured kernel can be listed
        }
        if (configured != null && !images.contains(configured) && Files.isRegularFile(configured)) {
            images.add(configured);
        }
        images.sort(Comparator.comparing(p -> p.getFileName().toString(), Kernel::compareVersions));
        List<GuestKernels.Known> out = new java.util.ArrayList<>();
        for (Path image : images) {
            Kernel k = locate(image);
            out.add(new GuestKernels.Known(k.version(), image.toString(),
                    k.modulesDir() == null ? null : k.modulesDir().toString(), image.equals(chosen)));
        }
        return out;
    }

    private static Path newest(Path boot) {
        try (Stream<Path> files = Files.list(boot)) {
            List<Path> kernels = files.filter(p -> p.getFileName().toString().startsWith("vmlinuz-")).toList();
            Comparator<Path> byVersion = Comparator.comparing(p -> p.getFileName().toString(), Kernel::compareVersions);
            return kernels.stream().filter(p -> p.getFileName().toString().endsWith("-cloud-amd64")).max(byVersion)
                    .or(() -> kernels.stream().max(byVersion))
                    .orElseThrow(() -> KilnException.notFound("no kernel in " + boot
                            + " for the vm isolation (apt-get install linux-image-cloud-amd64)"));
        } catch (IOException e) {
            throw KilnException.notFound("cannot list " + boot + ": " + e.getMessage()
                    + " (apt-get install linux-image-cloud-amd64)");
        }
    }

    /** Compares "6.1.0-56-cloud-amd64" with "6.1.0-9-cloud-amd64" by their numbers. */
    static int compareVersions(String a, String b) {
        String[] x = a.split("[.-]");
        String[] y = b.split("[.-]");
        for (int i = 0; i < Math.min(x.length, y.length); i++) {
            int c = x[i].matches("\\d+") && y[i].matches("\\d+")
                    ? Long.compare(Long.parseLong(x[i]), Long.parseLong(y[i])) : x[i].compareTo(y[i]);
            if (c != 0) return c;
        }
        return Integer.compare(x.length, y.length);
    }

    /** The module files QEMU's guests load ({@link #NEEDED}), dependencies first. */
    public List<Path> modules() {
        return modules(NEEDED);
    }

    /**
     * The module files to load, dependencies first, for {@code needed}: modules that are built in (listed in
     * modules.builtin) need nothing; one that is neither built in nor a module is an error.
     */
    List<Path> modules(List<String> needed) {
        if (modulesDir == null) return List.of();
        try {
            Path dep = modulesDir.resolve("modules.dep");
            String key = dep + "\0" + Files.size(dep) + "\0" + Files.getLastModifiedTime(dep).toMillis() + "\0" + needed;
            return MODULES.computeIfAbsent(key, k -> resolve(needed));
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot read " + modulesDir + ": " + e.getMessage(), e);
        }
    }

    /**
     * {@link #modules}' answers in this JVM, by modules.dep (its path, size, time) and the modules asked for: every
     * VM's start asks (the initramfs cache's key), and parsing modules.dep (thousands of lines) in a containerd
     * pod's cold shim took 0.1-0.3 s at load 10; a spare shim's warm-up asks first (DirectoryVm.warm).
     */
    private static final Map<String, List<Path>> MODULES = new java.util.concurrent.ConcurrentHashMap<>();

    private List<Path> resolve(List<String> needed) {
        Map<String, List<String>> deps = new HashMap<>();
        Map<String, String> fileOf = new HashMap<>();
        Set<String> builtin = new LinkedHashSet<>();
        try {
            for (String line : Files.readAllLines(modulesDir.resolve("modules.dep"))) {
                int colon = line.indexOf(':');
                if (colon < 0) continue;
                String file = line.substring(0, colon).strip();
                String rest = line.substring(colon + 1).strip();
                fileOf.put(moduleName(file), file);
                deps.put(file, rest.isEmpty() ? List.of() : List.of(rest.split("\\s+")));
            }
            Path builtinFile = modulesDir.resolve("modules.builtin");
            if (Files.isRegularFile(builtinFile)) {
                for (String line : Files.readAllLines(builtinFile)) builtin.add(moduleName(line.strip()));
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot read " + modulesDir + ": " + e.getMessage(), e);
        }
        LinkedHashSet<String> ordered = new LinkedHashSet<>();
        for (String name : needed) {
            String file = fileOf.get(name);
            if (file == null) {
                if (builtin.contains(name) || OPTIONAL.contains(name)) continue;
                throw KilnException.invalid("kernel " + version + " has no " + name + " driver (built in or as a module), "
                        + "which the vm isolation needs");
            }
            visit(file, deps, ordered, new LinkedHashSet<>());
        }
        List<Path> paths = new ArrayList<>();
        for (String file : ordered) paths.add(modulesDir.resolve(file));
        return paths;
    }

    private static void visit(String file, Map<String, List<String>> deps, Set<String> out, Set<String> path) {
        if (out.contains(file) || !path.add(file)) return; // loaded already, or a cycle modules.dep should not have
        for (String dep : deps.getOrDefault(file, List.of())) visit(dep, deps, out, path);
        out.add(file);
    }

    /** "kernel/drivers/virtio/virtio_ring.ko.zst" → "virtio_ring" ('-' and '_' are the same to the kernel). */
    static String moduleName(String file) {
        String name = file.substring(file.lastIndexOf('/') + 1);
        int ko = name.indexOf(".ko");
        return (ko < 0 ? name : name.substring(0, ko)).replace('-', '_');
    }
}
