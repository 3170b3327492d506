package dev.kiln.image.registry;

import dev.kiln.image.Digest;

import java.io.InputStream;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;

/** HEAD /v2/&lt;repo&gt;/blobs/&lt;digest&gt;: does the registry already have this blob in this repository? */
final class BlobCheck {

    static final Duration TIMEOUT = Duration.ofSeconds(30);

    private final RegistryTransport transport;

    BlobCheck(RegistryTransport transport) {
        this.transport = transport;
    }

    /** {@code scope} is push when checking before an upload, so the same token serves both requests. */
    boolean exists(String repository, Digest digest, Scope scope) {
        HttpResponse<InputStream> response = transport.send(new RegistryTransport.Request("HEAD",
                transport.uri("/v2/" + repository + "/blobs/" + digest), scope, List.of(), null, TIMEOUT));
        int status = response.statusCode();
        if (status == 200) {
            RegistryTransport.discard(response);
            return true;
        }
        if (status == 404) {
            RegistryTransport.discard(response);
            return false;
        }
        throw RegistryError.status(response, transport.host(), "checking for blob " + digest + " in " + repository);
    }
}
