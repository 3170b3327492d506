package dev.kiln.image.registry;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.kiln.KilnException;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Manifest;
import dev.kiln.image.MediaType;
import dev.kiln.testing.Command;
import dev.kiln.testing.Fixture;
import dev.kiln.testing.Fixtures;
import dev.kiln.testing.OciLayout;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The distribution token flow against a real docker-registry configured with {@code auth: token}. The token issuer
 * is a small JDK HttpServer signing RS256 JWTs with a key whose self-signed certificate is the registry's
 * rootcertbundle (x5c header), as Docker Hub's auth.docker.io does with its own chain.
 */
class BearerTokenTest {

    private static final String SERVICE = "kiln-test-registry";
    private static final String ISSUER = "kiln-test-issuer";
    private static final String BASIC_OK = "Basic " + Base64.getEncoder().encodeToString("u:pw".getBytes());
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path work;
    private HttpServer issuer;
    private RegistryProcess registry;
    private PrivateKey key;
    private String certDer;
    private final List<String> tokenRequests = new CopyOnWriteArrayList<>();

    @BeforeEach
    void start() throws Exception {
        Command.require("openssl", "openssl");
        Path keyPem = work.resolve("key.pem");
        Path certPem = work.resolve("cert.pem");
        Command.run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPem.toString(),
                "-out", certPem.toString(), "-days", "2", "-subj", "/CN=kiln-token-issuer");
        key = KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(pem(keyPem)));
        X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(Files.newInputStream(certPem));
        certDer = Base64.getEncoder().encodeToString(cert.getEncoded());

        issuer = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        issuer.createContext("/token", this::issue);
        issuer.start();
        registry = RegistryProcess.start(Files.createDirectories(work.resolve("registry")), """
                auth:
                  token:
                    realm: http://127.0.0.1:%d/token
                    service: %s
                    issuer: %s
                    rootcertbundle: %s
                """.formatted(issuer.getAddress().getPort(), SERVICE, ISSUER, certPem));
    }

    @AfterEach
    void stop() {
        if (registry != null) {
            registry.close();
        }
        if (issuer != null) {
            issuer.stop(0);
        }
    }

    @Test
    void pushesAndPullsWithTokensCachedPerScope() throws IOException {
        Fixture layout = Fixtures.busyboxLayout(work);
        Path dir = Path.of(layout.ociLayoutDir());
        Digest manifestDigest = Digest.parse(OciLayout.descriptor(dir, layout.tag()).get("digest").asText());
        byte[] manifestBytes = Files.readAllBytes(blob(dir, manifestDigest));
        Manifest manifest = JSON.readValue(manifestBytes, Manifest.class);
        List<Descriptor> blobs = new ArrayList<>(manifest.layers());
        blobs.add(manifest.config());
        RegistryClient client = RegistryClient.connect(registry.host(),
                new RegistryAccess(true, Credentials.of("u", "pw")));

        for (Descriptor d : blobs) {
            client.pushBlob("team/busybox", d, blob(dir, d.contentDigest()));
        }
        client.pushManifest("team/busybox", "v1", MediaType.OCI_MANIFEST, manifestBytes);
        FetchedManifest fetched = client.fetchManifest("team/busybox", "v1");
        for (Descriptor d : blobs) {
            assertThat(client.hasBlob("team/busybox", d.contentDigest())).isTrue();
        }

        assertThat(fetched.digest()).isEqualTo(manifestDigest);
        // one token per scope: pull,push for the whole push, then pull for the reads
        assertThat(tokenRequests).containsExactly(
                "scope=repository:team/busybox:pull,push service=" + SERVICE + " auth=yes",
                "scope=repository:team/busybox:pull service=" + SERVICE + " auth=yes");
    }

    @Test
    void anonymousGetsARefusalFromTheTokenService() {
        RegistryClient anonymous = RegistryClient.connect(registry.host(), new RegistryAccess(true, Credentials.none()));

        assertThatThrownBy(() -> anonymous.fetchManifest("team/busybox", "v1"))
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.UNAUTHORIZED);
                    assertThat(e.getMessage()).startsWith("authentication to " + registry.host() + " failed");
                });
    }

    /** Grants every action asked for to u:pw; refuses anyone else, as a token service does. */
    private void issue(HttpExchange exchange) throws IOException {
        Map<String, List<String>> query = query(exchange.getRequestURI().getRawQuery());
        String auth = exchange.getRequestHeaders().getFirst("Authorization");
        tokenRequests.add("scope=" + String.join("+", query.getOrDefault("scope", List.of()))
                + " service=" + query.get("service").getFirst() + " auth=" + (auth != null ? "yes" : "no"));
        if (!BASIC_OK.equals(auth)) {
            exchange.sendResponseHeaders(401, -1);
            exchange.close();
            return;
        }
        List<Map<String, Object>> access = new ArrayList<>();
        for (String scope : query.getOrDefault("scope", List.of())) {
            String[] parts = scope.split(":");
            access.add(Map.of("type", parts[0], "name", parts[1], "actions", List.of(parts[2].split(","))));
        }
        byte[] body = JSON.writeValueAsBytes(Map.of("token", jwt(access), "expires_in", 300));
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        exchange.sendResponseHeaders(200, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    private String jwt(List<Map<String, Object>> access) {
        try {
            long now = System.currentTimeMillis() / 1000;
            Map<String, Object> header = Map.of("typ", "JWT", "alg", "RS256", "x5c", List.of(certDer));
            Map<String, Object> claims = new LinkedHashMap<>();
            claims.put("iss", ISSUER);
            claims.put("sub", "u");
            claims.put("aud", SERVICE);
            claims.put("exp", now + 300);
            claims.put("nbf", now - 10);
            claims.put("iat", now);
            claims.put("jti", UUID.randomUUID().toString());
            claims.put("access", access);
            Base64.Encoder b64 = Base64.getUrlEncoder().withoutPadding();
            String signed = b64.encodeToString(JSON.writeValueAsBytes(header)) + "."
                    + b64.encodeToString(JSON.writeValueAsBytes(claims));
            Signature rs256 = Signature.getInstance("SHA256withRSA");
            rs256.initSign(key);
            rs256.update(signed.getBytes(StandardCharsets.US_ASCII));
            return signed + "." + b64.encodeToString(rs256.sign());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static Map<String, List<String>> query(String raw) {
        Map<String, List<String>> out = new LinkedHashMap<>();
        for (String pair : raw == null ? new String[0] : raw.split("&")) {
            int eq = pair.indexOf('=');
            out.computeIfAbsent(URLDecoder.decode(pair.substring(0, eq), StandardCharsets.UTF_8), k -> new ArrayList<>())
                    .add(URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
        }
        return out;
    }

    private static byte[] pem(Path file) throws IOException {
        String text = Files.readString(file).replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
        return Base64.getDecoder().decode(text);
    }

    private static Path blob(Path layout, Digest d) {
        return layout.resolve("blobs/sha256").resolve(d.hex());
    }
}
