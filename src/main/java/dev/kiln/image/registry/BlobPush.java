package dev.kiln.image.registry;

import dev.kiln.KilnException;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A monolithic blob upload: HEAD (skip if present), POST /v2/&lt;repo&gt;/blobs/uploads/, then one PUT of the whole
 * file to the returned location with {@code ?digest=}. The registry verifies the digest on PUT.
 */
final class BlobPush {

    static final Duration START_TIMEOUT = Duration.ofSeconds(30);
    /** The PUT's timeout covers the upload itself, so it grows with the size: a floor plus 64 KiB/s. */
    static final long MIN_BYTES_PER_SECOND = 64 * 1024;

    private final RegistryTransport transport;
    private final BlobCheck check;

    BlobPush(RegistryTransport transport, BlobCheck check) {
        this.transport = transport;
        this.check = check;
    }

    void push(String repository, Descriptor d, Path file) {
        Digest digest = d.contentDigest();
        long size = sizeOf(file);
        if (size != d.size()) {
            throw KilnException.corrupt("cannot push " + file + ": it is " + size + " bytes but its descriptor says "
                    + d.size() + " (the local content is damaged; pull or build the image again)");
        }
        Scope scope = Scope.push(repository);
        if (check.exists(repository, digest, scope)) {
            return;
        }
        URI location = startUpload(repository, digest, scope);
        String q = "digest=" + URLEncoder.encode(digest.toString(), StandardCharsets.UTF_8);
        URI put = URI.create(location + (location.getRawQuery() == null ? "?" : "&") + q);
        HttpResponse<InputStream> response = transport.send(new RegistryTransport.Request("PUT", put, scope,
                List.of("Content-Type", "application/octet-stream"), () -> publisher(file),
                START_TIMEOUT.plusSeconds(size / MIN_BYTES_PER_SECOND)));
        if (response.statusCode() != 201) {
            throw RegistryError.status(response, transport.host(), "uploading blob " + digest + " to " + repository);
        }
        RegistryTransport.discard(response);
    }

    private URI startUpload(String repository, Digest digest, Scope scope) {
        HttpResponse<InputStream> response = transport.send(new RegistryTransport.Request("POST",
                transport.uri("/v2/" + repository + "/blobs/uploads/"), scope, List.of(), null, START_TIMEOUT));
        if (response.statusCode() != 202) {
            throw RegistryError.status(response, transport.host(), "starting the upload of blob " + digest
                    + " to " + repository);
        }
        String location = response.headers().firstValue("Location").orElse("");
        RegistryTransport.discard(response);
        if (location.isEmpty()) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "registry " + transport.host()
                    + " started an upload without a Location header (it does not follow the distribution spec)");
        }
        try {
            // Location may be absolute or relative to the request (and may already carry a query, e.g. _state=…)
            return response.uri().resolve(location);
        } catch (IllegalArgumentException e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "registry " + transport.host()
                    + " gave an invalid upload location \"" + location + "\"");
        }
    }

    private static long sizeOf(Path file) {
        try {
            return Files.size(file);
        } catch (IOException e) {
            throw KilnException.notFound("cannot push " + file + ": " + e.getMessage());
        }
    }

    private static HttpRequest.BodyPublisher publisher(Path file) {
        try {
            return HttpRequest.BodyPublishers.ofFile(file);
        } catch (FileNotFoundException e) {
            throw new UncheckedIOException(e);
        }
    }
}
