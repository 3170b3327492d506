package dev.kiln.isolation.vm;

import dev.kiln.KilnException;
import dev.kiln.testing.Command;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPOutputStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Extraction of the ELF vmlinux from the host's real (LZ4) cloud kernel, cross-checked with the lz4 tool. */
class VmlinuxTest {

    @TempDir
    Path root;

    static Kernel hostKernel() {
        Kernel k;
        try {
            k = Kernel.locate(null);
        } catch (KilnException e) {
            Assumptions.abort("no kernel in /boot (apt-get install linux-image-cloud-amd64): " + e.getMessage());
            throw e;
        }
        return k;
    }

    @Test
    void extractsAnElfWithAPvhEntryFromTheHostsBzImageAndCachesIt() throws IOException {
        Kernel kernel = hostKernel();
        long t0 = System.nanoTime();
        Path vmlinux = Vmlinux.ensure(kernel, root.resolve("kernels"));
        System.out.println("vmlinux extracted in " + (System.nanoTime() - t0) / 1_000_000 + " ms: " + vmlinux + ", "
                + Files.size(vmlinux) + " bytes");
        assertThat(vmlinux).startsWith(root.resolve("kernels"));
        assertThat(vmlinux.getParent().getFileName().toString()).startsWith(kernel.version() + "-");
        byte[] head = new byte[64];
        try (InputStream in = Files.newInputStream(vmlinux)) {
            assertThat(in.readNBytes(head, 0, 64)).isEqualTo(64);
        }
        assertThat(Arrays.copyOf(head, 4)).containsExactly(0x7f, 'E', 'L', 'F');
        assertThat(head[4]).as("ELFCLASS64").isEqualTo((byte) 2);
        assertThat(ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getShort(0x12)).as("EM_X86_64").isEqualTo((short) 62);
        assertThat(Vmlinux.pvhEntry(vmlinux)).isPresent(); // Debian's cloud kernel has CONFIG_PVH=y
        assertThat(Files.size(vmlinux)).isEqualTo(Vmlinux.elfEnd(Files.readAllBytes(vmlinux)));

        long mtime = Files.getLastModifiedTime(vmlinux).toMillis();
        assertThat(Vmlinux.ensure(kernel, root.resolve("kernels"))).isEqualTo(vmlinux);
        assertThat(Files.getLastModifiedTime(vmlinux).toMillis()).isEqualTo(mtime);
        try (var files = Files.list(vmlinux.getParent())) {
            assertThat(files.map(p -> p.getFileName().toString())).containsExactly("vmlinux"); // no temp file left
        }
    }

    @Test
    void qemuBootsTheVmlinuxWhenItHasAPvhEntryElseTheBzImage() throws IOException {
        Kernel kernel = hostKernel();
        Path kernels = root.resolve("kernels");
        assertThat(Vmlinux.forQemu(kernel, kernels)).isEqualTo(Vmlinux.ensure(kernel, kernels));
        System.setProperty("kiln.vm.vmlinux", "false");
        try {
            assertThat(Vmlinux.forQemu(kernel, kernels)).isEqualTo(kernel.image());
        } finally {
            System.clearProperty("kiln.vm.vmlinux");
        }
        Path bogus = Files.write(root.resolve("vmlinuz-bogus"), new byte[4096]);
        assertThat(Vmlinux.forQemu(new Kernel(bogus, "bogus", null), kernels)).isEqualTo(bogus);
    }

    @Test
    void agreesWithTheLz4Tool() throws Exception {
        Kernel kernel = hostKernel();
        Path lz4 = Command.which("lz4");
        Assumptions.assumeTrue(lz4 != null, "lz4 not found on PATH (install the Debian package 'lz4')");
        byte[] payload = Vmlinux.payload(kernel.image());
        Assumptions.assumeTrue(ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN).getInt(0) == 0x184C2102,
                kernel.image() + " is not LZ4-compressed");
        Path compressed = Files.write(root.resolve("payload.lz4"), Arrays.copyOf(payload, payload.length - 4));
        Process p = new ProcessBuilder(lz4.toString(), "-dc", compressed.toString())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Thread reader = Thread.ofVirtual().start(() -> {
            try {
                p.getInputStream().transferTo(out);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        reader.join();
        assertThat(p.exitValue()).isZero();
        byte[] byTool = out.toByteArray();

        Path ours = root.resolve("vmlinux");
        Files.createFile(ours);
        Vmlinux.extract(kernel.image(), ours);
        byte[] extracted = Files.readAllBytes(ours);
        assertThat(byTool.length).isEqualTo(ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN)
                .getInt(payload.length - 4)); // the size the kernel's build appended
        assertThat(extracted.length).isLessThanOrEqualTo(byTool.length); // the appended relocations are cut off
        assertThat(Arrays.equals(extracted, Arrays.copyOf(byTool, extracted.length))).isTrue();
    }

    @Test
    void decodesAGzipPayloadAndRefusesXz() throws IOException {
        byte[] elf = new byte[4096];
        elf[0] = 0x7f;
        elf[1] = 'E';
        elf[2] = 'L';
        elf[3] = 'F';
        ByteArrayOutputStream gz = new ByteArrayOutputStream();
        try (GZIPOutputStream out = new GZIPOutputStream(gz)) {
            out.write(elf);
        }
        byte[] payload = withSize(gz.toByteArray(), elf.length);
        assertThat(Vmlinux.decompress(payload, Path.of("k"))).isEqualTo(elf);
        assertThatThrownBy(() -> Vmlinux.decompress(withSize(gz.toByteArray(), 1), Path.of("k")))
                .hasMessageContaining("decompressed to 4096 bytes, but the kernel's build recorded 1");

        byte[] xz = withSize(new byte[]{(byte) 0xfd, '7', 'z', 'X', 'Z', 0, 0, 0}, 1);
        assertThatThrownBy(() -> Vmlinux.decompress(xz, Path.of("/boot/k")))
                .isInstanceOf(KilnException.class)
                .hasMessageContaining("/boot/k is compressed with xz")
                .hasMessageContaining("LZ4, gzip and zstd");
    }

    @Test
    void refusesAFileThatIsNoBzImage() throws IOException {
        Path bogus = Files.write(root.resolve("vmlinuz-bogus"), new byte[4096]);
        assertThatThrownBy(() -> Vmlinux.ensure(new Kernel(bogus, "bogus", null), root.resolve("kernels")))
                .isInstanceOf(KilnException.class).hasMessageContaining("neither a bzImage");
    }

    private static byte[] withSize(byte[] body, int size) {
        byte[] p = Arrays.copyOf(body, body.length + 4);
        ByteBuffer.wrap(p).order(ByteOrder.LITTLE_ENDIAN).putInt(body.length, size);
        return p;
    }
}
