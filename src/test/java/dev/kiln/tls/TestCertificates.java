package dev.kiln.tls;

import dev.kiln.testing.Command;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A private PKI made with {@code openssl}, as an operator would make one for {@code dockerd --tlsverify}: a CA, the
 * daemon's certificate for IP 127.0.0.1 (PKCS#8 key), a client certificate signed by the CA with a SEC1 EC key
 * ({@code BEGIN EC PRIVATE KEY}), a second good client with a PKCS#1 RSA key ({@code BEGIN RSA PRIVATE KEY}), and an
 * intruder: a client certificate from another CA.
 */
record TestCertificates(Path dir) {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    static TestCertificates create(Path dir) {
        Command.require("openssl", "openssl");
        TestCertificates c = new TestCertificates(dir);
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
            Files.writeString(dir.resolve("client.ext"), "extendedKeyUsage=clientAuth\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        c.selfSigned("ca", "kiln test CA");
        c.selfSigned("other-ca", "unrelated CA");
        c.openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server-key.pem", "-out", "server.csr",
                "-subj", "/CN=kilnd");
        c.sign("server", "ca", "server.ext");
        c.openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "client-key.pem");
        c.openssl("req", "-new", "-key", "client-key.pem", "-out", "client.csr", "-subj", "/CN=kiln client");
        c.sign("client", "ca", "client.ext");
        c.openssl("genrsa", "-traditional", "-out", "rsa-client-key.pem", "2048");
        c.openssl("req", "-new", "-key", "rsa-client-key.pem", "-out", "rsa-client.csr", "-subj", "/CN=rsa client");
        c.sign("rsa-client", "ca", "client.ext");
        c.openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "intruder-key.pem", "-out", "intruder.csr",
                "-subj", "/CN=intruder");
        c.sign("intruder", "other-ca", "client.ext");
        return c;
    }

    Path ca() {
        return dir.resolve("ca-cert.pem");
    }

    Path otherCa() {
        return dir.resolve("other-ca-cert.pem");
    }

    Path cert(String who) {
        return dir.resolve(who + "-cert.pem");
    }

    Path key(String who) {
        return dir.resolve(who + "-key.pem");
    }

    private void selfSigned(String name, String cn) {
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + "-key.pem", "-out",
                name + "-cert.pem", "-days", "2", "-subj", "/CN=" + cn);
    }

    private void sign(String name, String ca, String ext) {
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + "-cert.pem", "-CAkey", ca + "-key.pem",
                "-CAcreateserial", "-out", name + "-cert.pem", "-days", "2", "-extfile", ext);
    }

    void openssl(String... args) {
        List<String> argv = new java.util.ArrayList<>(List.of("sh", "-c", "cd \"$0\" && exec openssl \"$@\"",
                dir.toString()));
        argv.addAll(List.of(args));
        Command.run(TIMEOUT, argv);
    }
}
