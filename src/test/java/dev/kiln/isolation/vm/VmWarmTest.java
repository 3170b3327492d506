package dev.kiln.isolation.vm;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A spare containerd shim's warm-up for vm pods (DirectoryVm.warm) and what it fills: the answers a VM's start
 * computes from the node's files, kept in the JVM by the files' path, size and time, so a changed file is read again.
 */
class VmWarmTest {

    @TempDir
    Path dir;

    @Test
    void theWarmUpWritesNothingUnderTheStateRootAndStartsNoProcess() throws IOException {
        Path root = Files.createDirectories(dir.resolve("state"));
        long children = ProcessHandle.current().descendants().count();
        new DirectoryVm(VmOptions.defaults(root)).warm();
        try (Stream<Path> files = Files.walk(root)) {
            assertThat(files.filter(p -> !p.equals(root)).toList()).isEmpty();
        }
        assertThat(ProcessHandle.current().descendants().count()).isEqualTo(children);
    }

    /** The initramfs's cache key follows kiln-init's content: a remembered digest is not used for a changed file. */
    @Test
    void aChangedInitGetsAnInitramfsOfItsOwnAfterTheWarmUp() throws IOException {
        Kernel kernel = VmlinuxTest.hostKernel();
        Path init = dir.resolve("kiln-init");
        Files.writeString(init, "#!/bin/sh\necho one\n");
        Files.setLastModifiedTime(init, FileTime.fromMillis(1_000_000));
        Initramfs.warm(kernel, init);
        Path first = Initramfs.ensure(kernel, init, dir.resolve("kernels"));
        // kiln-init rebuilt: other bytes, size and time (its digest is remembered by path, size and time, as the
        // modules' part of the key always was)
        Files.writeString(init, "#!/bin/sh\necho second\n");
        Files.setLastModifiedTime(init, FileTime.fromMillis(2_000_000));
        Path second = Initramfs.ensure(kernel, init, dir.resolve("kernels"));
        assertThat(second).isNotEqualTo(first);
        assertThat(Files.readAllBytes(second)).containsSequence("echo second".getBytes());
        assertThat(Initramfs.ensure(kernel, init, dir.resolve("kernels"))).isEqualTo(second);
    }

    /**
     * The kernel file QEMU boots is worked out by the warm-up once a VM extracted the vmlinux (before that it writes
     * nothing: the extraction is a VM's), and remembered only while the files are the ones it looked at: a kernel
     * replaced under the same path, or a removed vmlinux, is looked at again rather than a stale answer booted.
     */
    @Test
    void theWarmUpRemembersTheBootFileOnlyWhileTheKernelAndItsVmlinuxAreTheSame() throws IOException {
        Path image = Files.copy(VmlinuxTest.hostKernel().image(), dir.resolve("vmlinuz-test"));
        Kernel kernel = new Kernel(image, "test", null);
        Path kernels = dir.resolve("kernels");
        Vmlinux.warm(kernel, kernels);
        assertThat(kernels).doesNotExist();
        assertThat(Vmlinux.remembered(kernel, kernels)).isEmpty();

        Path boot = Vmlinux.forQemu(kernel, kernels); // a node's first VM: extracted
        assertThat(boot).startsWith(kernels).hasFileName("vmlinux");
        assertThat(Vmlinux.remembered(kernel, kernels)).contains(boot);
        Vmlinux.warm(kernel, kernels);
        assertThat(Vmlinux.forQemu(kernel, kernels)).isEqualTo(boot);

        Files.delete(boot); // the cache cleaned: extracted again, not a path that is gone
        assertThat(Vmlinux.remembered(kernel, kernels)).isEmpty();
        assertThat(Vmlinux.forQemu(kernel, kernels)).isEqualTo(boot);
        assertThat(boot).isRegularFile();

        // another kernel at the same path (a package upgrade rewrites it): not the old kernel's vmlinux
        Files.delete(image);
        Files.write(image, new byte[4096]);
        assertThat(Vmlinux.remembered(kernel, kernels)).isEmpty();
        assertThat(Vmlinux.forQemu(kernel, kernels)).isEqualTo(image);
    }

    @Test
    void theKernelsModuleOrderIsTheSameAnswerEachTime() {
        Kernel kernel = VmlinuxTest.hostKernel();
        java.util.List<Path> first = kernel.modules(Kernel.NEEDED);
        assertThat(first).isNotEmpty().allSatisfy(p -> assertThat(p).isRegularFile());
        assertThat(kernel.modules(Kernel.NEEDED)).isEqualTo(first);
        assertThat(kernel.modules(java.util.List.of("virtio_mmio"))).isNotEqualTo(first).isSubsetOf(first);
    }
}
