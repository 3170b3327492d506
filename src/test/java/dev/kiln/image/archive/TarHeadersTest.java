package dev.kiln.image.archive;

import dev.kiln.KilnException;
import dev.kiln.testing.LayerTar;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** kiln import takes tar archives only, copied byte for byte; anything else is refused on one line. */
class TarHeadersTest {

    @Test
    void aTarIsCopiedWhole() throws IOException {
        byte[] tar = new LayerTar().dir("etc", 0755).file("etc/hostname", "box\n", 0644)
                .file("l/" + "n".repeat(255), "long but legal", 0644).tar();
        byte[] padded = new byte[tar.length + 10240]; // trailing zero padding, as GNU tar writes
        System.arraycopy(tar, 0, padded, 0, tar.length);
        for (byte[] input : new byte[][] {tar, padded, new byte[10240]}) {
            assertThat(copy(input)).isEqualTo(input);
        }
    }

    @Test
    void whatIsNoTarIsRefused() {
        byte[] pattern = new byte[8192];
        for (int i = 1; i < pattern.length; i += 2) {
            pattern[i] = (byte) 0xff; // issue 11: unpacked as a mode-000 directory named "?"
        }
        byte[] random = new byte[10000];
        new Random(11).nextBytes(random);
        byte[] text = "hello\n".repeat(200).getBytes(StandardCharsets.UTF_8);
        for (byte[] input : new byte[][] {pattern, random, text, "hello\n".getBytes(StandardCharsets.UTF_8),
                new byte[0]}) {
            assertThatThrownBy(() -> copy(input)).isInstanceOfSatisfying(KilnException.class, e -> {
                assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
                assertThat(e.getMessage()).startsWith("cannot import: the input is").doesNotContain("\n");
            });
        }
    }

    @Test
    void aBrokenHeaderAfterTheFirstIsRefused() {
        byte[] tar = new LayerTar().file("a", "x", 0644).file("b", "y", 0644).tar();
        tar[1024 + 3] ^= 0x01; // the second header's name: its checksum no longer matches
        assertThatThrownBy(() -> copy(tar)).isInstanceOf(KilnException.class)
                .hasMessageContaining("not a tar archive after entry 1");
    }

    @Test
    void aNameNoLinuxFilesystemHoldsIsRefused() {
        byte[] tar = new LayerTar().file("a".repeat(300), "x", 0644).tar();
        assertThatThrownBy(() -> copy(tar)).isInstanceOfSatisfying(KilnException.class, e -> {
            assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
            assertThat(e.getMessage()).contains("longer than 255 bytes").doesNotContain("\n");
        });
    }

    @Test
    void aFailedReadStaysAnIoError() {
        InputStream failing = new InputStream() {
            @Override
            public int read() throws IOException {
                throw new IOException("disk gone");
            }
        };
        assertThatThrownBy(() -> TarHeaders.copy(failing, new ByteArrayOutputStream()))
                .isInstanceOf(IOException.class).hasMessage("disk gone");
    }

    private static byte[] copy(byte[] input) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        TarHeaders.copy(new ByteArrayInputStream(input), out);
        return out.toByteArray();
    }
}
