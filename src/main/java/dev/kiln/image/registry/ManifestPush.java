package dev.kiln.image.registry;

import dev.kiln.KilnException;
import dev.kiln.image.Digest;

import java.io.InputStream;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;

/** PUT /v2/&lt;repo&gt;/manifests/&lt;reference&gt;: the bytes are sent as given, since the digest covers them. */
final class ManifestPush {

    static final Duration TIMEOUT = Duration.ofSeconds(60);

    private final RegistryTransport transport;

    ManifestPush(RegistryTransport transport) {
        this.transport = transport;
    }

    Digest push(String repository, String reference, String mediaType, byte[] body) {
        Digest digest = Digest.of(body);
        String name = repository + (reference.startsWith("sha256:") ? "@" : ":") + reference;
        HttpResponse<InputStream> response = transport.send(new RegistryTransport.Request("PUT",
                transport.uri("/v2/" + repository + "/manifests/" + reference), Scope.push(repository),
                List.of("Content-Type", mediaType), () -> HttpRequest.BodyPublishers.ofByteArray(body), TIMEOUT));
        if (response.statusCode() != 201) {
            throw RegistryError.status(response, transport.host(), "pushing manifest " + name);
        }
        String announced = response.headers().firstValue("Docker-Content-Digest").orElse(digest.toString()).strip();
        RegistryTransport.discard(response);
        if (announced.startsWith("sha256:") && !announced.equals(digest.toString())) {
            throw KilnException.corrupt("registry " + transport.host() + " stored manifest " + name + " as "
                    + announced + " instead of " + digest + " (it rewrote the manifest; report it)");
        }
        return digest;
    }
}
