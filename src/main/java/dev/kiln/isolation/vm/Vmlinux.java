package dev.kiln.isolation.vm;

import com.github.luben.zstd.ZstdInputStream;
import dev.kiln.KilnException;
import org.apache.commons.compress.compressors.lz4.BlockLZ4CompressorInputStream;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;
import java.util.zip.GZIPInputStream;

/**
 * The uncompressed ELF {@code vmlinux} inside a bzImage (Firecracker boots only that; QEMU microvm boots it through its
 * Xen PVH entry without running the bzImage's decompressor). Read per the Linux x86 boot protocol: the setup header's
 * {@code setup_sects} (0x1f1), its {@code HdrS} magic (0x202), {@code payload_offset} (0x248, from the start of the
 * protected-mode code) and {@code payload_length} (0x24c). The payload's compression is told by its magic: LZ4 legacy
 * (Debian's), gzip and zstd are decoded; others are refused. The kernel's build appends the uncompressed size (u32 LE)
 * to the payload, which is checked; the relocations the build also appends after the ELF are cut off.
 *
 * <p>Cached under {@code ROOT/kernels/<version>-<hash of the bzImage's path, size, mtime>/vmlinux} (temp file, then
 * rename). A file that is an ELF already is used as it is.
 */
final class Vmlinux {

    static final int ELF_MAGIC = 0x7f454c46; // "\x7fELF", big-endian read
    private static final int LZ4_LEGACY_MAGIC = 0x184C2102; // little-endian in the file: 02 21 4c 18
    private static final int XEN_ELFNOTE_PHYS32_ENTRY = 18;
    private static final int MAX_LZ4_LEGACY_BLOCK = 8 << 20; // lz4 -l: 8 MiB of output per block

    private Vmlinux() {
    }

    /** The ELF vmlinux of {@code kernel}: the image itself when it is one, else extracted once and cached. */
    static Path ensure(Kernel kernel, Path kernelsDir) {
        Path image = kernel.image();
        try {
            if (isElf(image)) return image;
            Path file = kernelsDir.resolve(key(kernel)).resolve("vmlinux");
            if (Files.isRegularFile(file)) return file;
            Files.createDirectories(file.getParent());
            Path tmp = Files.createTempFile(file.getParent(), "vmlinux-", ".tmp");
            try {
                extract(image, tmp);
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(tmp);
            }
            return file;
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot extract the vmlinux of " + image + ": "
                    + e.getMessage(), e);
        }
    }

    /**
     * The kernel file QEMU boots: the extracted vmlinux when it has a PVH entry (QEMU then jumps straight into the
     * uncompressed kernel: no decompression under emulation, ~0.3 s less per TCG boot, docs/vm.md), else the bzImage
     * itself, which every x86 kernel can boot. {@code -Dkiln.vm.vmlinux=false} always boots the bzImage.
     */
    static Path forQemu(Kernel kernel, Path kernelsDir) {
        if (!Boolean.parseBoolean(System.getProperty("kiln.vm.vmlinux", "true"))) return kernel.image();
        return answer(kernel, kernelsDir, true).orElse(kernel.image());
    }

    /**
     * {@link #forQemu}'s answer worked out ahead and remembered, when the vmlinux was extracted already (a spare
     * containerd shim's warm-up, DirectoryVm.warm): nothing is written; a node's first VM still extracts it.
     */
    static void warm(Kernel kernel, Path kernelsDir) {
        if (Boolean.parseBoolean(System.getProperty("kiln.vm.vmlinux", "true"))) answer(kernel, kernelsDir, false);
    }

    /**
     * The kernel file QEMU boots, remembered in this JVM by the bzImage's identity (path, size, time, inode) and the
     * answer's own: reading the ELF's headers for its PVH note took 40-100 ms of a loaded node's pod start (a cold
     * path in a fresh JVM), two stats now. A replaced kernel or a removed cache is looked at again. {@code extract}
     * false: nothing is written (empty when the vmlinux is not extracted yet).
     */
    private static Optional<Path> answer(Kernel kernel, Path kernelsDir, boolean extract) {
        Path image = kernel.image();
        List<Path> key = List.of(kernelsDir.toAbsolutePath(), image.toAbsolutePath());
        Optional<Path> known = remembered(kernel, kernelsDir);
        if (known.isPresent()) return known;
        try {
            FileIdentity bzImage = FileIdentity.of(image);
            Path vmlinux = image;
            if (!isElf(image)) {
                if (!extract && !Files.isRegularFile(kernelsDir.resolve(key(kernel)).resolve("vmlinux"))) {
                    return Optional.empty();
                }
                vmlinux = ensure(kernel, kernelsDir);
            }
            Path boot = pvhEntry(vmlinux).isPresent() ? vmlinux : image;
            ANSWERS.put(key, new Answer(bzImage, boot, FileIdentity.of(boot)));
            return Optional.of(boot);
        } catch (KilnException | IOException e) {
            // not LZ4/gzip/zstd, or not an x86-64 ELF inside: the bzImage boots as it is
            return extract ? Optional.of(image) : Optional.empty();
        }
    }

    /** {@link #forQemu}'s remembered answer; empty when there is none, or the bzImage or the answer's file changed. */
    static Optional<Path> remembered(Kernel kernel, Path kernelsDir) {
        Answer known = ANSWERS.get(List.of(kernelsDir.toAbsolutePath(), kernel.image().toAbsolutePath()));
        try {
            return known != null && known.image().equals(FileIdentity.of(kernel.image()))
                    && known.bootFile().equals(FileIdentity.of(known.boot())) ? Optional.of(known.boot()) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private record Answer(FileIdentity image, Path boot, FileIdentity bootFile) {
    }

    private static final Map<List<Path>, Answer> ANSWERS = new ConcurrentHashMap<>();

    static boolean isElf(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] m = in.readNBytes(4);
            return m.length == 4 && ByteBuffer.wrap(m).getInt() == ELF_MAGIC;
        }
    }

    /** Writes the ELF inside the bzImage {@code bzImage} to {@code target}. */
    static void extract(Path bzImage, Path target) throws IOException {
        byte[] payload = payload(bzImage);
        byte[] elf = decompress(payload, bzImage);
        if (elf.length < 64 || ByteBuffer.wrap(elf).getInt() != ELF_MAGIC) {
            throw KilnException.invalid("the payload of " + bzImage + " is not an ELF vmlinux after decompression");
        }
        int end = (int) Math.min(elf.length, elfEnd(elf));
        try (OutputStream out = Files.newOutputStream(target, StandardOpenOption.TRUNCATE_EXISTING)) {
            out.write(elf, 0, end);
        }
    }

    /** The compressed payload of a bzImage, per its setup header. */
    static byte[] payload(Path bzImage) throws IOException {
        try (FileChannel ch = FileChannel.open(bzImage)) {
            ByteBuffer hdr = ByteBuffer.allocate(0x250).order(ByteOrder.LITTLE_ENDIAN);
            while (hdr.hasRemaining() && ch.read(hdr, hdr.position()) > 0) {
                // read the header
            }
            if (hdr.position() < 0x250 || hdr.getInt(0x202) != 0x53726448) { // "HdrS"
                throw KilnException.invalid(bzImage + " is neither a bzImage (no HdrS boot header) nor an ELF vmlinux");
            }
            int version = hdr.getShort(0x206) & 0xffff;
            if (version < 0x208) {
                throw KilnException.invalid(bzImage + " uses boot protocol " + Integer.toHexString(version >> 8) + "."
                        + Integer.toHexString(version & 0xff) + ", which has no payload fields (2.08 or later needed)");
            }
            int setupSects = hdr.get(0x1f1) & 0xff;
            if (setupSects == 0) setupSects = 4; // the boot protocol's rule for old kernels
            long offset = (setupSects + 1L) * 512 + (hdr.getInt(0x248) & 0xffffffffL);
            long length = hdr.getInt(0x24c) & 0xffffffffL;
            if (length == 0 || offset + length > ch.size() || length > Integer.MAX_VALUE - 8) {
                throw KilnException.invalid(bzImage + " has a payload outside the file (offset " + offset + ", length "
                        + length + ", file " + ch.size() + " bytes)");
            }
            ByteBuffer payload = ByteBuffer.allocate((int) length);
            while (payload.hasRemaining()) {
                if (ch.read(payload, offset + payload.position()) < 0) throw new IOException("short read of the payload");
            }
            return payload.array();
        }
    }

    /** Decodes the payload by its magic; checks the uncompressed size the kernel's build appended. */
    static byte[] decompress(byte[] payload, Path source) throws IOException {
        if (payload.length < 8) throw KilnException.invalid("the payload of " + source + " is too short");
        ByteBuffer p = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
        long expected = p.getInt(payload.length - 4) & 0xffffffffL; // size_append
        int body = payload.length - 4;
        byte[] out;
        int b0 = payload[0] & 0xff;
        int b1 = payload[1] & 0xff;
        if (p.getInt(0) == LZ4_LEGACY_MAGIC) {
            out = lz4Legacy(payload, body, expected, source);
        } else if (b0 == 0x1f && b1 == 0x8b) {
            try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(payload, 0, body))) {
                out = in.readAllBytes();
            }
        } else if (p.order(ByteOrder.BIG_ENDIAN).getInt(0) == 0x28b52ffd) {
            try (InputStream in = new ZstdInputStream(new ByteArrayInputStream(payload, 0, body))) {
                out = in.readAllBytes();
            }
        } else {
            String kind = b0 == 0xfd && b1 == 0x37 ? "xz" : b0 == 0x42 && b1 == 0x5a ? "bzip2"
                    : b0 == 0x5d ? "lzma" : b0 == 0x89 && b1 == 0x4c ? "lzo" : "unknown";
            throw KilnException.invalid("the kernel " + source + " is compressed with " + kind + " (magic "
                    + HexFormat.of().formatHex(payload, 0, 4) + "); kiln extracts vmlinux from LZ4, gzip and zstd "
                    + "kernels only (pass an uncompressed vmlinux instead)");
        }
        if (out.length != expected) {
            throw KilnException.invalid("the payload of " + source + " decompressed to " + out.length
                    + " bytes, but the kernel's build recorded " + expected);
        }
        return out;
    }

    /** LZ4 legacy frames: magic, then blocks of [u32 LE compressed size][LZ4 block]; a frame may follow a frame. */
    private static byte[] lz4Legacy(byte[] payload, int end, long expected, Path source) throws IOException {
        if (expected > Integer.MAX_VALUE - 8) throw KilnException.invalid("the kernel " + source + " is too large");
        ByteBuffer p = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
        byte[] out = new byte[(int) expected];
        int written = 0;
        int pos = 0;
        while (pos + 4 <= end) {
            int size = p.getInt(pos);
            pos += 4;
            if (size == LZ4_LEGACY_MAGIC) continue; // the start of (another) frame
            if (size <= 0 || size > end - pos) {
                throw KilnException.invalid("the LZ4 payload of " + source + " has a bad block at byte " + (pos - 4));
            }
            try (InputStream block = new BlockLZ4CompressorInputStream(new ByteArrayInputStream(payload, pos, size))) {
                int room = Math.min(MAX_LZ4_LEGACY_BLOCK, out.length - written);
                int n = block.readNBytes(out, written, room);
                if (n == room && block.read() >= 0) {
                    throw KilnException.invalid("the LZ4 payload of " + source + " decompresses to more than the "
                            + expected + " bytes its build recorded");
                }
                written += n;
            }
            pos += size;
        }
        if (pos != end) throw KilnException.invalid("the LZ4 payload of " + source + " ends in a partial block");
        return written == out.length ? out : java.util.Arrays.copyOf(out, written);
    }

    /**
     * Where the ELF's own bytes end (its program segments and section headers); the kernel's build appends the
     * relocation table the bzImage's decompressor uses after it, which an ELF loader does not need.
     */
    static long elfEnd(byte[] elf) {
        ByteBuffer b = ByteBuffer.wrap(elf).order(ByteOrder.LITTLE_ENDIAN);
        requireElf64(b);
        long end = b.getLong(0x28) + (long) (b.getShort(0x3a) & 0xffff) * (b.getShort(0x3c) & 0xffff); // section headers
        long phoff = b.getLong(0x20);
        int phentsize = b.getShort(0x36) & 0xffff;
        int phnum = b.getShort(0x38) & 0xffff;
        end = Math.max(end, phoff + (long) phentsize * phnum);
        for (int i = 0; i < phnum; i++) {
            int ph = (int) (phoff + (long) i * phentsize);
            end = Math.max(end, b.getLong(ph + 8) + b.getLong(ph + 0x20)); // p_offset + p_filesz
        }
        return end;
    }

    /** The Xen PVH 32-bit entry point (ELF note XEN_ELFNOTE_PHYS32_ENTRY), which QEMU needs to boot an ELF kernel. */
    static OptionalLong pvhEntry(Path vmlinux) throws IOException {
        byte[] elf;
        try (FileChannel ch = FileChannel.open(vmlinux)) {
            ByteBuffer head = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(head, 0);
            requireElf64(head);
            long phoff = head.getLong(0x20);
            int phentsize = head.getShort(0x36) & 0xffff;
            int phnum = head.getShort(0x38) & 0xffff;
            ByteBuffer phs = ByteBuffer.allocate(phentsize * phnum).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(phs, phoff);
            for (int i = 0; i < phnum; i++) {
                int ph = i * phentsize;
                if (phs.getInt(ph) != 4) continue; // PT_NOTE
                long off = phs.getLong(ph + 8);
                long size = phs.getLong(ph + 0x20);
                if (size <= 0 || size > 1 << 20) continue;
                ByteBuffer notes = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
                ch.read(notes, off);
                elf = notes.array();
                OptionalLong entry = pvhNote(elf);
                if (entry.isPresent()) return entry;
            }
        }
        return OptionalLong.empty();
    }

    private static OptionalLong pvhNote(byte[] notes) {
        ByteBuffer n = ByteBuffer.wrap(notes).order(ByteOrder.LITTLE_ENDIAN);
        int pos = 0;
        while (pos + 12 <= notes.length) {
            int namesz = n.getInt(pos);
            int descsz = n.getInt(pos + 4);
            int type = n.getInt(pos + 8);
            int name = pos + 12;
            int desc = name + align4(namesz);
            if (namesz < 0 || descsz < 0 || desc + descsz > notes.length) break;
            String owner = new String(notes, name, Math.max(0, namesz - 1), StandardCharsets.US_ASCII);
            if (owner.equals("Xen") && type == XEN_ELFNOTE_PHYS32_ENTRY && descsz >= 4) {
                return OptionalLong.of(descsz >= 8 ? n.getLong(desc) : n.getInt(desc) & 0xffffffffL);
            }
            pos = desc + align4(descsz);
        }
        return OptionalLong.empty();
    }

    private static int align4(int x) {
        return (x + 3) & ~3;
    }

    private static void requireElf64(ByteBuffer b) {
        if (b.limit() < 64 || b.order(ByteOrder.BIG_ENDIAN).getInt(0) != ELF_MAGIC || b.get(4) != 2 || b.get(5) != 1) {
            b.order(ByteOrder.LITTLE_ENDIAN);
            throw KilnException.invalid("not a 64-bit little-endian ELF kernel");
        }
        b.order(ByteOrder.LITTLE_ENDIAN);
    }

    private static String key(Kernel kernel) throws IOException {
        try {
            Path image = kernel.image().toAbsolutePath();
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update((image + "\0" + Files.size(image) + "\0" + Files.getLastModifiedTime(image).toMillis())
                    .getBytes(StandardCharsets.UTF_8));
            return kernel.version().replaceAll("[^A-Za-z0-9._-]", "_") + "-"
                    + HexFormat.of().formatHex(sha.digest()).substring(0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
