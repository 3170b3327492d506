package dev.kiln;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

class LibcCallTest {
    @TempDir
    Path tmp;

    /**
     * open(2)'s flags are written out in Java; this machine's C headers are the truth. O_DIRECTORY and O_NOFOLLOW
     * differ between x86-64 and arm64, where a wrong value silently follows links (review of 2026-12-07).
     */
    @Test
    void openFlagsAreThisMachinesLibcs() throws Exception {
        Path source = Files.writeString(tmp.resolve("flags.c"), """
                #define _GNU_SOURCE
                #include <fcntl.h>
                #include <stddef.h>
                #include <stdio.h>
                #include <sys/stat.h>
                int main(void) {
                    printf("%d %d %d %d %d %d %d %d %d %zu %zu\\n", O_RDONLY, O_WRONLY, O_NONBLOCK, O_DIRECTORY,
                           O_NOFOLLOW, O_CLOEXEC, O_PATH, AT_REMOVEDIR, STATX_MNT_ID, offsetof(struct statx, stx_mask),
                           offsetof(struct statx, stx_mnt_id));
                    return 0;
                }
                """);
        Path binary = tmp.resolve("flags");
        Process cc = new ProcessBuilder("cc", "-o", binary.toString(), source.toString()).inheritIO().start();
        assertThat(cc.waitFor()).isZero();
        Process run = new ProcessBuilder(binary.toString()).start();
        String printed = new String(run.getInputStream().readAllBytes()).strip();
        assertThat(run.waitFor()).isZero();
        assertThat(printed).isEqualTo(LibcCall.O_RDONLY + " " + LibcCall.O_WRONLY + " " + LibcCall.O_NONBLOCK + " "
                + LibcCall.O_DIRECTORY + " "
                + LibcCall.O_NOFOLLOW + " " + LibcCall.O_CLOEXEC + " " + LibcCall.O_PATH + " " + LibcCall.AT_REMOVEDIR + " "
                + LibcCall.STATX_MNT_ID + " " + LibcCall.STATX_MASK_OFFSET + " " + LibcCall.STATX_MNT_ID_OFFSET);
    }
}
