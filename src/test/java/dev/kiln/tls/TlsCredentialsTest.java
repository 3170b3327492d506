package dev.kiln.tls;

import dev.kiln.KilnException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The PEM forms openssl writes: which are read (PKCS#8, PKCS#1 RSA, SEC1 EC) and how the others are refused. */
class TlsCredentialsTest {

    @TempDir
    static Path tmp;
    static TestCertificates pki;

    @BeforeAll
    static void pki() {
        pki = TestCertificates.create(tmp.resolve("pki"));
    }

    @Test
    void readsPkcs8Pkcs1AndSec1Keys() throws IOException {
        assertThat(Files.readString(pki.key("server"))).startsWith("-----BEGIN PRIVATE KEY-----");
        assertThat(Files.readString(pki.key("rsa-client"))).startsWith("-----BEGIN RSA PRIVATE KEY-----");
        assertThat(Files.readString(pki.key("client"))).startsWith("-----BEGIN EC PRIVATE KEY-----");
        for (String who : new String[] {"server", "rsa-client", "client"}) {
            TlsCredentials c = TlsCredentials.read(pki.ca(), pki.cert(who), pki.key(who));
            assertThat(c.key().getAlgorithm()).isEqualTo(c.chain().getFirst().getPublicKey().getAlgorithm());
            assertThat(c.context().getProtocol()).isEqualTo("TLS");
            assertThat(c.toString()).doesNotContain(c.key().toString());
        }
    }

    @Test
    void anEncryptedKeyIsRefusedWithTheCommandThatFixesIt() {
        pki.openssl("pkcs8", "-topk8", "-in", "server-key.pem", "-out", "encrypted-key.pem", "-passout", "pass:x");
        assertThatThrownBy(() -> TlsCredentials.read(pki.ca(), pki.cert("server"), pki.dir().resolve("encrypted-key.pem")))
                .isInstanceOf(KilnException.class)
                .hasMessageContaining("is encrypted")
                .hasMessageContaining("openssl pkcs8 -topk8 -nocrypt");
    }

    @Test
    void aKeyOfAnotherAlgorithmThanItsCertificateIsRefused() {
        assertThatThrownBy(() -> TlsCredentials.read(pki.ca(), pki.cert("client"), pki.key("server")))
                .isInstanceOf(KilnException.class)
                .hasMessageContaining("is not the EC key of its certificate");
    }

    @Test
    void aFileWithoutCertificatesIsRefused() {
        assertThatThrownBy(() -> TlsCredentials.read(pki.key("server"), null, null))
                .isInstanceOf(KilnException.class)
                .hasMessageContaining("holds no PEM certificate");
        assertThatThrownBy(() -> TlsCredentials.read(pki.ca(), pki.cert("server"), null))
                .isInstanceOf(KilnException.class)
                .hasMessageContaining("needs its key (--tlskey)");
    }

    @Test
    void addressesAreDockersTcpForm() {
        assertThat(TcpAddress.parse("tcp://127.0.0.1:2376")).isEqualTo(new TcpAddress("127.0.0.1", 2376));
        assertThat(TcpAddress.parse("tcp://example.org")).isEqualTo(new TcpAddress("example.org", 2376));
        assertThat(TcpAddress.parse("tcp://[::1]:9").toString()).isEqualTo("tcp://[::1]:9");
        assertThatThrownBy(() -> TcpAddress.parse("tcp://host:2376/path")).isInstanceOf(KilnException.class);
        assertThatThrownBy(() -> TcpAddress.parse("http://host:2376")).isInstanceOf(KilnException.class);
    }
}
