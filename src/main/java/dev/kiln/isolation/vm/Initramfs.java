package dev.kiln.isolation.vm;

import com.github.luben.zstd.ZstdInputStream;
import dev.kiln.KilnException;
import org.apache.commons.compress.archivers.cpio.CpioArchiveEntry;
import org.apache.commons.compress.archivers.cpio.CpioArchiveOutputStream;
import org.apache.commons.compress.archivers.cpio.CpioConstants;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.zip.GZIPInputStream;

/**
 * The initramfs every VM of one kernel boots: {@code /init} (kiln-init), {@code /modules/*.ko} (uncompressed) and
 * {@code /modules.order} (the paths in load order). A newc cpio, built once per kernel and kiln-init under
 * {@code ROOT/kernels/<key>/initramfs.cpio} (temp file, then rename).
 */
final class Initramfs {

    private Initramfs() {
    }

    /** The initramfs for QEMU's guests ({@link Kernel#NEEDED}). */
    static Path ensure(Kernel kernel, Path init, Path kernelsDir) {
        return ensure(kernel, Kernel.NEEDED, init, kernelsDir);
    }

    /**
     * The initramfs with the modules {@code needed} resolves to (a VMM's own set, e.g.
     * {@link Kernel#NEEDED_FIRECRACKER}); the cache key covers the module files, so each set has its own file.
     */
    static Path ensure(Kernel kernel, List<String> needed, Path init, Path kernelsDir) {
        List<Path> modules = kernel.modules(needed);
        Path file = kernelsDir.resolve(key(kernel, init, modules)).resolve("initramfs.cpio");
        if (Files.isRegularFile(file)) return file;
        try {
            Files.createDirectories(file.getParent());
            Path tmp = Files.createTempFile(file.getParent(), "initramfs-", ".tmp");
            try {
                write(tmp, init, modules);
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot build the initramfs " + file + ": " + e.getMessage(), e);
        }
        return file;
    }

    private static void write(Path target, Path init, List<Path> modules) throws IOException {
        StringBuilder order = new StringBuilder();
        try (OutputStream out = Files.newOutputStream(target);
             CpioArchiveOutputStream cpio = new CpioArchiveOutputStream(out, CpioConstants.FORMAT_NEW)) {
            add(cpio, "init", CpioConstants.C_ISREG | 0755, Files.readAllBytes(init));
            add(cpio, "modules", CpioConstants.C_ISDIR | 0755, null);
            for (Path module : modules) {
                String name = "modules/" + Kernel.moduleName(module.toString()) + ".ko";
                add(cpio, name, CpioConstants.C_ISREG | 0644, uncompressed(module));
                order.append('/').append(name).append('\n');
            }
            add(cpio, "modules.order", CpioConstants.C_ISREG | 0644, order.toString().getBytes(StandardCharsets.UTF_8));
            cpio.finish();
        }
    }

    private static void add(CpioArchiveOutputStream cpio, String name, int mode, byte[] data) throws IOException {
        CpioArchiveEntry e = new CpioArchiveEntry(CpioConstants.FORMAT_NEW, name, data == null ? 0 : data.length);
        e.setMode(mode);
        e.setNumberOfLinks(data == null ? 2 : 1);
        e.setTime(0);
        cpio.putArchiveEntry(e);
        if (data != null) cpio.write(data);
        cpio.closeArchiveEntry();
    }

    /** .ko as is; .ko.zst and .ko.gz decompressed (the kernel's finit_module wants them plain); .ko.xz refused. */
    static byte[] uncompressed(Path module) throws IOException {
        String name = module.getFileName().toString();
        if (name.endsWith(".ko")) return Files.readAllBytes(module);
        try (InputStream raw = Files.newInputStream(module)) {
            if (name.endsWith(".ko.zst")) {
                try (InputStream in = new ZstdInputStream(raw)) {
                    return in.readAllBytes();
                }
            }
            if (name.endsWith(".ko.gz")) {
                try (InputStream in = new GZIPInputStream(raw)) {
                    return in.readAllBytes();
                }
            }
        }
        throw KilnException.invalid("kernel module " + module + " is compressed in a format kiln cannot read "
                + "(xz); use a kernel with uncompressed or zstd modules");
    }

    /**
     * The SHA-256 of kiln-init files seen in this JVM, by path, size and time: every VM's start hashes it for the
     * cache's key, which a spare containerd shim's warm-up does first (DirectoryVm.warm).
     */
    private static final java.util.Map<String, byte[]> INIT_DIGESTS = new java.util.concurrent.ConcurrentHashMap<>();

    private static byte[] initDigest(Path init) throws IOException {
        String key = init.toAbsolutePath() + "\0" + Files.size(init) + "\0" + Files.getLastModifiedTime(init).toMillis();
        byte[] known = INIT_DIGESTS.get(key);
        if (known != null) return known;
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(init));
            INIT_DIGESTS.put(key, digest);
            return digest;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The cache's key of QEMU's initramfs ({@link Kernel#NEEDED}), computed and so remembered: a spare's warm-up. */
    static void warm(Kernel kernel, Path init) {
        key(kernel, init, kernel.modules(Kernel.NEEDED));
    }

    private static String key(Kernel kernel, Path init, List<Path> modules) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(initDigest(init));
            for (Path m : modules) {
                sha.update((m + "\0" + Files.size(m) + "\0" + Files.getLastModifiedTime(m).toMillis() + "\n")
                        .getBytes(StandardCharsets.UTF_8));
            }
            return kernel.version().replaceAll("[^A-Za-z0-9._-]", "_") + "-"
                    + HexFormat.of().formatHex(sha.digest()).substring(0, 16);
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot read " + init + " or the kernel's modules: "
                    + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
