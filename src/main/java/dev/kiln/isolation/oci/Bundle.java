package dev.kiln.isolation.oci;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.isolation.EtcFiles;
import dev.kiln.isolation.SandboxSpec;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * An OCI runtime bundle in a sandbox's directory: {@code config.json}, the root filesystem at {@code rootfs/} (the
 * engine mounts the sandbox's overlay there) and the {@code hostname}, {@code hosts} and {@code resolv.conf} files
 * that config.json bind-mounts into /etc.
 */
public record Bundle(Path dir) {

    public static final String CONFIG_JSON = "config.json";
    public static final String ROOTFS = "rootfs";
    /** One for all bundles: a mapper per bundle was built (and its serializers found again) at every create. */
    private static final ObjectWriter CONFIG_WRITER = new ObjectMapper().writer(SerializationFeature.INDENT_OUTPUT);

    public Path configJson() {
        return dir.resolve(CONFIG_JSON);
    }

    public Path rootfs() {
        return dir.resolve(ROOTFS);
    }

    /** Writes the bundle files for {@code spec} into {@code spec.dir()} (created if missing) for {@code runtime}. */
    public static Bundle write(SandboxSpec spec, OciRuntime runtime) {
        return write(spec, RuntimeSpec.build(spec, ROOTFS, runtime));
    }

    static Bundle write(SandboxSpec spec, ObjectNode config) {
        return write(spec, config, EtcFiles.hostResolvConf());
    }

    static Bundle write(SandboxSpec spec, ObjectNode config, String hostResolvConf) {
        Bundle bundle = new Bundle(spec.dir());
        writeEtcFiles(spec, hostResolvConf);
        try {
            // config.json carries the environment, which may hold secrets: owner only.
            String json = CONFIG_WRITER.writeValueAsString(config);
            writeAtomically(bundle.configJson(), json + "\n", "rw-------");
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL,
                    "cannot write the OCI bundle in " + spec.dir() + ": " + e.getMessage() + " (check the run root)", e);
        }
        return bundle;
    }

    /**
     * hostname, hosts and resolv.conf for the sandbox's network as it is now: rewritten at each start, since an
     * address is the attachment's and changes with it. The runtime bind-mounts them when it starts the sandbox.
     */
    static void writeEtcFiles(SandboxSpec spec, String hostResolvConf) {
        try {
            if (!Files.isDirectory(spec.dir())) { // a start finds it: createDirectories would throw and catch
                Files.createDirectories(spec.dir());
            }
            writeAtomically(spec.dir().resolve(EtcFiles.HOSTNAME), EtcFiles.hostname(RuntimeSpec.hostname(spec)),
                    "rw-r--r--");
            writeAtomically(spec.dir().resolve(EtcFiles.HOSTS), EtcFiles.hosts(spec), "rw-r--r--");
            writeAtomically(spec.dir().resolve(EtcFiles.RESOLV_CONF),
                    EtcFiles.resolvConf(spec.network(), hostResolvConf), "rw-r--r--");
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot write /etc files for the sandbox in "
                    + spec.dir() + ": " + e.getMessage() + " (check the run root)", e);
        }
    }

    /**
     * Writes {@code content} by rename, unless {@code target} holds it already: a {@code run}'s start rewrote the three
     * /etc files its create had just written, 3 new files and 3 renames (5-13 ms of a gVisor run here, where a
     * file's creation takes 1-4 ms); reading them back costs only the page cache.
     */
    /** Whether {@code target} holds {@code bytes}, read no further than one byte past them (it may grow meanwhile). */
    private static boolean holds(Path target, byte[] bytes) throws IOException {
        try (java.io.InputStream in = Files.newInputStream(target)) {
            return java.util.Arrays.equals(in.readNBytes(bytes.length + 1), bytes);
        }
    }

    private static void writeAtomically(Path target, String content, String permissions) throws IOException {
        byte[] bytes = content.getBytes(StandardCharsets.UTF_8);
        // the sandbox may have written to its /etc files (bound in): compared by size first, never read whole
        if (Files.exists(target) && Files.size(target) == bytes.length && holds(target, bytes)) {
            return;
        }
        Path temp = Files.createTempFile(target.getParent(), "." + target.getFileName(), ".tmp",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(permissions)));
        boolean moved = false;
        try {
            Files.write(temp, bytes);
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            moved = true;
        } finally {
            if (!moved) { // else it is gone: a delete would only throw and catch ENOENT inside the JDK
                Files.deleteIfExists(temp);
            }
        }
    }
}
