package dev.kiln.image.registry;

import dev.kiln.KilnException;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.function.LongConsumer;

/**
 * GET /v2/&lt;repo&gt;/blobs/&lt;digest&gt;, streamed, optionally from an offset. The bytes are not verified here: the
 * caller's sink (a content-store writer) hashes and sizes them, and it alone knows what a resumed prefix was.
 */
final class BlobPull {

    /** Bounds only the wait for response headers; the body may take as long as it takes while bytes keep coming. */
    static final Duration HEADERS_TIMEOUT = Duration.ofSeconds(60);

    private final RegistryTransport transport;

    BlobPull(RegistryTransport transport) {
        this.transport = transport;
    }

    void fetch(String repository, Descriptor d, long offset, OutputStream out, LongConsumer progress) {
        Digest digest = d.contentDigest();
        String host = transport.host();
        if (offset < 0 || (d.size() >= 0 && offset > d.size())) {
            throw KilnException.invalid("cannot resume blob " + digest + " at byte " + offset + " of " + d.size());
        }
        String[] headers = offset > 0 ? new String[] {"Range", "bytes=" + offset + "-"} : new String[0];
        HttpResponse<InputStream> response = transport.send(RegistryTransport.Request.get(
                transport.uri("/v2/" + repository + "/blobs/" + digest), Scope.pull(repository), HEADERS_TIMEOUT,
                headers));
        int status = response.statusCode();
        long skip;
        if (status == 206 && offset > 0) {
            skip = 0;
            String range = response.headers().firstValue("Content-Range").orElse("");
            if (!range.startsWith("bytes " + offset + "-")) {
                RegistryTransport.discard(response);
                throw new KilnException(KilnException.Kind.UNAVAILABLE, "registry " + host + " answered a resume of "
                        + digest + " at byte " + offset + " with range \"" + range + "\" (retry the pull)");
            }
        } else if (status == 200) {
            skip = offset; // the server ignored Range: drop what we already have
        } else if (status == 416 && offset == d.size()) {
            RegistryTransport.discard(response);
            return; // we already had every byte
        } else if (status == 404) {
            String details = RegistryError.details(response);
            throw KilnException.notFound("blob " + digest + " of " + repository + " not found in " + host
                    + (details.isEmpty() ? "" : " (" + details + ")"));
        } else {
            throw RegistryError.status(response, host, "pulling blob " + digest + " of " + repository);
        }
        copy(response, digest, d.size(), offset, skip, out, progress);
    }

    private void copy(HttpResponse<InputStream> response, Digest digest, long size, long offset, long skip,
                      OutputStream out, LongConsumer progress) {
        long expected = size >= 0 ? size - offset + skip : Long.MAX_VALUE;
        try (InputStream in = response.body()) {
            StallGuard.copy(in, new ResumedSink(out, skip, offset, progress), transport.stall(), expected, n -> { });
        } catch (StallGuard.TooLarge e) {
            throw KilnException.corrupt("blob " + digest + " from " + transport.host() + " is larger than its "
                    + size + " bytes (the registry serves different content; report it)");
        } catch (IOException e) {
            throw RegistryError.unreachable(transport.host(), e);
        }
    }

    /** Drops the prefix a server resent when it ignored our Range, and reports the blob position after each write. */
    private static final class ResumedSink extends OutputStream {
        private final OutputStream out;
        private final LongConsumer progress;
        private long skip;
        private long position;

        ResumedSink(OutputStream out, long skip, long offset, LongConsumer progress) {
            this.out = out;
            this.skip = skip;
            this.position = offset;
            this.progress = progress;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            int dropped = (int) Math.min(skip, len);
            skip -= dropped;
            if (len > dropped) {
                out.write(b, off + dropped, len - dropped);
                position += len - dropped;
                progress.accept(position);
            }
        }
    }
}
