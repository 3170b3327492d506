package dev.kiln.image.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.image.Digest;
import dev.kiln.image.MediaType;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.time.Duration;

/** GET /v2/&lt;repo&gt;/manifests/&lt;reference&gt;, verified against the digest we asked for or were told. */
final class ManifestPull {

    static final Duration TIMEOUT = Duration.ofSeconds(30);
    /** containerd's limit: real manifests are kilobytes, so anything bigger is a broken or hostile server. */
    static final int MAX_BYTES = 4 * 1024 * 1024;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final RegistryTransport transport;

    ManifestPull(RegistryTransport transport) {
        this.transport = transport;
    }

    FetchedManifest fetch(String repository, String reference) {
        String name = repository + (reference.startsWith("sha256:") ? "@" : ":") + reference;
        String host = transport.host();
        HttpResponse<InputStream> response = transport.send(RegistryTransport.Request.get(
                transport.uri("/v2/" + repository + "/manifests/" + reference), Scope.pull(repository), TIMEOUT,
                "Accept", MediaType.ACCEPT_MANIFESTS));
        int status = response.statusCode();
        if (status == 404) {
            String details = RegistryError.details(response);
            throw KilnException.notFound("image " + name + " not found in " + host + " ("
                    + (details.isEmpty() ? "" : details + "; ") + "check the name and tag)");
        }
        if (status != 200) {
            throw RegistryError.status(response, host, "pulling manifest " + name);
        }
        byte[] bytes = read(response, name);
        Digest actual = Digest.of(bytes);
        if (reference.startsWith("sha256:")) {
            Digest expected = Digest.parse(reference);
            if (!expected.equals(actual)) {
                throw KilnException.corrupt("manifest " + name + " from " + host + " has digest " + actual
                        + ", not the one asked for (the registry or a proxy altered it; retry or report it)");
            }
        } else {
            response.headers().firstValue("Docker-Content-Digest").filter(h -> h.startsWith("sha256:"))
                    .ifPresent(h -> {
                        if (!actual.toString().equals(h.strip())) {
                            throw KilnException.corrupt("manifest " + name + " from " + host + " has digest " + actual
                                    + " but the registry announced " + h.strip() + " (retry, or report it)");
                        }
                    });
        }
        return new FetchedManifest(mediaType(bytes, response, name), actual, bytes);
    }

    private byte[] read(HttpResponse<InputStream> response, String name) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (InputStream in = response.body()) {
            StallGuard.copy(in, out, transport.stall(), MAX_BYTES, n -> { });
        } catch (StallGuard.TooLarge e) {
            throw KilnException.corrupt("manifest " + name + " from " + transport.host() + " is larger than "
                    + MAX_BYTES / (1024 * 1024) + " MiB; refusing it");
        } catch (IOException e) {
            throw RegistryError.unreachable(transport.host(), e);
        }
        return out.toByteArray();
    }

    /** The body's own mediaType wins: Content-Type is sometimes generic (application/json) behind proxies. */
    private String mediaType(byte[] bytes, HttpResponse<InputStream> response, String name) {
        JsonNode node;
        try {
            node = JSON.readTree(bytes);
        } catch (IOException e) {
            throw KilnException.corrupt("manifest " + name + " from " + transport.host() + " is not JSON");
        }
        String fromBody = node == null ? "" : node.path("mediaType").asText("");
        if (!fromBody.isEmpty()) {
            return fromBody;
        }
        return response.headers().firstValue("Content-Type")
                .map(ct -> ct.split(";", 2)[0].strip())
                .orElse("");
    }
}
