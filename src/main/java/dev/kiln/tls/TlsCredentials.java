package dev.kiln.tls;

import dev.kiln.KilnException;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The PEM files of one side of a mutual-TLS link, as Docker takes them ({@code --tlscacert}, {@code --tlscert},
 * {@code --tlskey}): the CA certificates trusted to sign the peer, and this side's certificate chain and private key.
 * Keys are PKCS#8 ({@code BEGIN PRIVATE KEY}); PKCS#1 RSA ({@code BEGIN RSA PRIVATE KEY}) and SEC1 EC
 * ({@code BEGIN EC PRIVATE KEY}) keys, as older openssl commands write them, are wrapped into PKCS#8 here. Encrypted
 * keys are refused. Shared by kilnd's TCP listener and the CLI's TLS transport; loads no Jetty class.
 */
public record TlsCredentials(List<X509Certificate> trusted, List<X509Certificate> chain, PrivateKey key) {

    /** TLS versions both sides allow: 1.3, and 1.2 for older clients such as some docker builds. */
    public static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};

    private static final Pattern BLOCK = Pattern.compile(
            "-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\\s]*?)-----END \\1-----");
    /** A throw-away password for the in-memory key store that carries the key to the key manager. */
    private static final char[] IN_MEMORY = "kiln".toCharArray();

    public TlsCredentials {
        trusted = List.copyOf(trusted);
        chain = List.copyOf(chain);
        if (chain.isEmpty() != (key == null)) {
            throw new IllegalArgumentException("a certificate needs its key and a key its certificate");
        }
    }

    /**
     * Reads the CA file and, when {@code cert} and {@code key} are both given, this side's certificate and key.
     * Every failure is one line naming the file and what to do.
     */
    public static TlsCredentials read(Path ca, Path cert, Path key) {
        List<X509Certificate> trusted = certificates(ca, "CA");
        if ((cert == null) != (key == null)) {
            throw KilnException.invalid(cert == null ? "--tlskey " + key + " needs its certificate (--tlscert)"
                    : "--tlscert " + cert + " needs its key (--tlskey)");
        }
        if (cert == null) {
            return new TlsCredentials(trusted, List.of(), null);
        }
        List<X509Certificate> chain = certificates(cert, "certificate");
        PrivateKey privateKey = privateKey(key, chain.getFirst());
        return new TlsCredentials(trusted, chain, privateKey);
    }

    /** Names the certificates only: the key never reaches a log. */
    @Override
    public String toString() {
        return "TlsCredentials[trusted=" + trusted.stream().map(c -> c.getSubjectX500Principal().getName()).toList()
                + ", certificate=" + (chain.isEmpty() ? "none" : chain.getFirst().getSubjectX500Principal().getName())
                + "]";
    }

    /** The CA certificates as a key store for a trust manager (Jetty's or the JDK's). */
    public KeyStore trustStore() {
        try {
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            for (int i = 0; i < trusted.size(); i++) {
                store.setCertificateEntry("ca-" + i, trusted.get(i));
            }
            return store;
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalStateException("cannot build an in-memory trust store", e);
        }
    }

    /** This side's key and chain as a key store whose entry's password is {@link #keyStorePassword}; null without. */
    public KeyStore keyStore() {
        if (key == null) {
            return null;
        }
        try {
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setKeyEntry("kiln", key, IN_MEMORY, chain.toArray(Certificate[]::new));
            return store;
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalStateException("cannot build an in-memory key store", e);
        }
    }

    public static String keyStorePassword() {
        return new String(IN_MEMORY);
    }

    /** A TLS context that presents this side's certificate (if any) and trusts only the CA file's certificates. */
    public SSLContext context() {
        try {
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(trustStore());
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keyStore(), IN_MEMORY);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(key == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
            return context;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot build a TLS context: " + e.getMessage(), e);
        }
    }

    // ---- PEM ----

    private record Block(String label, byte[] der) {
    }

    private static List<Block> blocks(Path file, String what) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw KilnException.invalid("cannot read the TLS " + what + " file " + file + ": "
                    + (e instanceof java.nio.file.NoSuchFileException ? "no such file" : e.getMessage()));
        }
        List<Block> blocks = new ArrayList<>();
        Matcher m = BLOCK.matcher(text);
        while (m.find()) {
            try {
                blocks.add(new Block(m.group(1), Base64.getMimeDecoder().decode(m.group(2))));
            } catch (IllegalArgumentException e) {
                throw KilnException.invalid("the TLS " + what + " file " + file + " has a damaged PEM block ("
                        + m.group(1) + ")");
            }
        }
        return blocks;
    }

    private static List<X509Certificate> certificates(Path file, String what) {
        List<X509Certificate> certs = new ArrayList<>();
        try {
            CertificateFactory x509 = CertificateFactory.getInstance("X.509");
            for (Block b : blocks(file, what)) {
                if (b.label().equals("CERTIFICATE")) {
                    certs.add((X509Certificate) x509.generateCertificate(new ByteArrayInputStream(b.der())));
                }
            }
        } catch (CertificateException e) {
            throw KilnException.invalid("the TLS " + what + " file " + file + " holds a certificate Java cannot read: "
                    + e.getMessage());
        }
        if (certs.isEmpty()) {
            throw KilnException.invalid("the TLS " + what + " file " + file
                    + " holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)");
        }
        return certs;
    }

    private static PrivateKey privateKey(Path file, X509Certificate cert) {
        String algorithm = cert.getPublicKey().getAlgorithm(); // RSA, EC, Ed25519, …
        for (Block b : blocks(file, "key")) {
            byte[] pkcs8 = switch (b.label()) {
                case "PRIVATE KEY" -> b.der();
                case "RSA PRIVATE KEY" -> Der.rsaPkcs1ToPkcs8(b.der());
                case "EC PRIVATE KEY" -> Der.sec1ToPkcs8(b.der(), file);
                case "ENCRYPTED PRIVATE KEY" -> throw KilnException.invalid("the TLS key " + file
                        + " is encrypted; kiln needs it unencrypted (openssl pkcs8 -topk8 -nocrypt -in " + file
                        + " -out key.pem), readable only by its owner");
                default -> null;
            };
            if (pkcs8 == null) {
                continue;
            }
            try {
                return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
            } catch (GeneralSecurityException e) {
                throw KilnException.invalid("the TLS key " + file + " is not the " + algorithm
                        + " key of its certificate, or is damaged (" + e.getMessage()
                        + "); convert it with: openssl pkcs8 -topk8 -nocrypt -in " + file + " -out key.pem");
            }
        }
        throw KilnException.invalid("the TLS key file " + file + " holds no PEM private key (expected -----BEGIN "
                + "PRIVATE KEY-----; convert other forms with: openssl pkcs8 -topk8 -nocrypt -in KEY -out key.pem)");
    }

    /** The little DER needed to wrap PKCS#1 and SEC1 keys into PKCS#8 (RFC 5208, RFC 5915). */
    static final class Der {
        private Der() {
        }

        /** rsaEncryption, 1.2.840.113549.1.1.1 */
        private static final byte[] RSA_OID = {0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x0d, 1, 1, 1};
        /** id-ecPublicKey, 1.2.840.10045.2.1 */
        private static final byte[] EC_OID = {0x2a, (byte) 0x86, 0x48, (byte) 0xce, 0x3d, 2, 1};

        static byte[] rsaPkcs1ToPkcs8(byte[] pkcs1) {
            byte[] algorithm = tlv(0x30, concat(tlv(0x06, RSA_OID), new byte[] {0x05, 0x00}));
            return privateKeyInfo(algorithm, pkcs1);
        }

        /** SEC1 {@code ECPrivateKey} names its curve in {@code [0] parameters}, which PKCS#8 moves to the algorithm. */
        static byte[] sec1ToPkcs8(byte[] sec1, Path file) {
            byte[] curve = null;
            try {
                int[] seq = header(sec1, 0, 0x30);
                int p = seq[0];
                int end = seq[0] + seq[1];
                while (p < end) {
                    int tag = sec1[p] & 0xff;
                    int[] h = header(sec1, p, tag);
                    if (tag == 0xa0) {
                        int[] oid = header(sec1, h[0], 0x06);
                        curve = java.util.Arrays.copyOfRange(sec1, oid[0], oid[0] + oid[1]);
                    }
                    p = h[0] + h[1];
                }
            } catch (IllegalArgumentException | ArrayIndexOutOfBoundsException e) {
                curve = null;
            }
            if (curve == null) {
                throw KilnException.invalid("the EC key " + file + " does not name its curve; convert it with: "
                        + "openssl pkcs8 -topk8 -nocrypt -in " + file + " -out key.pem");
            }
            byte[] algorithm = tlv(0x30, concat(tlv(0x06, EC_OID), tlv(0x06, curve)));
            return privateKeyInfo(algorithm, sec1);
        }

        private static byte[] privateKeyInfo(byte[] algorithm, byte[] key) {
            return tlv(0x30, concat(new byte[] {0x02, 0x01, 0x00}, algorithm, tlv(0x04, key)));
        }

        /** {content offset, content length} of the element at {@code p}, which must have tag {@code tag}. */
        private static int[] header(byte[] der, int p, int tag) {
            if ((der[p] & 0xff) != tag) {
                throw new IllegalArgumentException("unexpected DER tag");
            }
            int len = der[p + 1] & 0xff;
            int at = p + 2;
            if (len >= 0x80) {
                int n = len & 0x7f;
                if (n == 0 || n > 3) {
                    throw new IllegalArgumentException("unsupported DER length");
                }
                len = 0;
                for (int i = 0; i < n; i++) {
                    len = (len << 8) | (der[at++] & 0xff);
                }
            }
            if (at + len > der.length) {
                throw new IllegalArgumentException("truncated DER");
            }
            return new int[] {at, len};
        }

        private static byte[] tlv(int tag, byte[] content) {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            b.write(tag);
            int n = content.length;
            if (n < 0x80) {
                b.write(n);
            } else if (n < 0x100) {
                b.write(0x81);
                b.write(n);
            } else if (n < 0x10000) {
                b.write(0x82);
                b.write(n >> 8);
                b.write(n);
            } else {
                b.write(0x83);
                b.write(n >> 16);
                b.write(n >> 8);
                b.write(n);
            }
            b.writeBytes(content);
            return b.toByteArray();
        }

        private static byte[] concat(byte[]... parts) {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            for (byte[] p : parts) {
                b.writeBytes(p);
            }
            return b.toByteArray();
        }
    }
}
