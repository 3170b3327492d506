package dev.kiln.isolation.oci;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.isolation.SandboxSpec;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
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

    private static final Path HOST_RESOLV_CONF = Path.of("/etc/resolv.conf");
    /** Where systemd-resolved keeps the real upstream servers when /etc/resolv.conf points at its 127.0.0.53 stub. */
    private static final Path RESOLVED_UPSTREAM = Path.of("/run/systemd/resolve/resolv.conf");

    public Path configJson() {
        return dir.resolve(CONFIG_JSON);
    }

    public Path rootfs() {
        return dir.resolve(ROOTFS);
    }

    /** Writes the bundle files for {@code spec} into {@code spec.dir()} (created if missing) for {@code runtime}. */
    public static Bundle write(SandboxSpec spec, OciRuntime runtime) {
        return write(spec, RuntimeSpec.build(spec, ROOTFS, runtime), hostResolvConf());
    }

    static Bundle write(SandboxSpec spec, ObjectNode config, String hostResolvConf) {
        Bundle bundle = new Bundle(spec.dir());
        try {
            Files.createDirectories(spec.dir());
            String hostname = RuntimeSpec.hostname(spec);
            writeAtomically(spec.dir().resolve(EtcFiles.HOSTNAME), EtcFiles.hostname(hostname), "rw-r--r--");
            writeAtomically(spec.dir().resolve(EtcFiles.HOSTS), EtcFiles.hosts(hostname), "rw-r--r--");
            writeAtomically(spec.dir().resolve(EtcFiles.RESOLV_CONF), EtcFiles.resolvConf(hostResolvConf), "rw-r--r--");
            // config.json carries the environment, which may hold secrets: owner only.
            String json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(config);
            writeAtomically(bundle.configJson(), json + "\n", "rw-------");
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL,
                    "cannot write the OCI bundle in " + spec.dir() + ": " + e.getMessage() + " (check the run root)", e);
        }
        return bundle;
    }

    /** The host resolv.conf to derive the sandbox's from, following systemd-resolved's stub to its upstream list. */
    static String hostResolvConf() {
        String main = readOrEmpty(HOST_RESOLV_CONF);
        if (!EtcFiles.hasUsableNameserver(main)) {
            String upstream = readOrEmpty(RESOLVED_UPSTREAM);
            if (EtcFiles.hasUsableNameserver(upstream)) {
                return upstream;
            }
        }
        return main;
    }

    private static String readOrEmpty(Path file) {
        try {
            return Files.readString(file);
        } catch (NoSuchFileException e) {
            return "";
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static void writeAtomically(Path target, String content, String permissions) throws IOException {
        Path temp = Files.createTempFile(target.getParent(), "." + target.getFileName(), ".tmp",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(permissions)));
        try {
            Files.writeString(temp, content, StandardCharsets.UTF_8);
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(temp);
        }
    }
}
