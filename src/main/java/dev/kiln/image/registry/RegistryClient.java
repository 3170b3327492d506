package dev.kiln.image.registry;

import dev.kiln.KilnException;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;

import java.io.OutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.LongConsumer;
import java.util.regex.Pattern;

/**
 * The OCI distribution API of one registry host. Each method is one endpoint class; authentication (Basic, or Bearer
 * tokens cached per repository scope) happens beneath them on the first 401. Thread-safe; keep one per host.
 */
public final class RegistryClient {

    /** The distribution spec's repository name grammar; anything else would let a name reach outside /v2/NAME/. */
    private static final Pattern REPOSITORY =
            Pattern.compile("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*");
    private static final Pattern REFERENCE = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|sha256:[a-f0-9]{64}");

    private final ManifestPull manifestPull;
    private final ManifestPush manifestPush;
    private final BlobPull blobPull;
    private final BlobCheck blobCheck;
    private final BlobPush blobPush;

    private RegistryClient(RegistryTransport transport) {
        this.manifestPull = new ManifestPull(transport);
        this.manifestPush = new ManifestPush(transport);
        this.blobPull = new BlobPull(transport);
        this.blobCheck = new BlobCheck(transport);
        this.blobPush = new BlobPush(transport, blobCheck);
    }

    /**
     * A client for {@code host} ({@code name[:port]}, the API host: {@code registry-1.docker.io} for Docker Hub).
     * No request is made until the first call.
     */
    public static RegistryClient connect(String host, RegistryAccess access) {
        return connect(host, access, RegistryTransport.DEFAULT_STALL);
    }

    /** As {@link #connect(String, RegistryAccess)}, aborting a body read after {@code stall} without data. */
    static RegistryClient connect(String host, RegistryAccess access, Duration stall) {
        if (host == null || host.isBlank() || host.contains("/")) {
            throw KilnException.invalid("invalid registry host \"" + host + "\" (expected name[:port])");
        }
        return new RegistryClient(new RegistryTransport(host, access, stall));
    }

    /** The manifest or index at {@code reference} (a tag or {@code sha256:…}), its digest checked. */
    public FetchedManifest fetchManifest(String repository, String reference) {
        return manifestPull.fetch(checkRepository(repository), checkReference(reference));
    }

    /**
     * Streams the blob into {@code out}; {@code progress} gets the number of blob bytes written so far. The caller
     * verifies digest and size (a content-store writer does).
     */
    public void fetchBlob(String repository, Descriptor d, OutputStream out, LongConsumer progress) {
        fetchBlob(repository, d, out, progress, 0);
    }

    /**
     * Resumes a blob download: {@code out} gets the bytes from {@code offset} on, and {@code progress} the blob
     * position (offset included). Works whether or not the server honours Range.
     */
    public void fetchBlob(String repository, Descriptor d, OutputStream out, LongConsumer progress, long offset) {
        blobPull.fetch(checkRepository(repository), d, offset, out, progress);
    }

    public boolean hasBlob(String repository, Digest d) {
        return blobCheck.exists(checkRepository(repository), d, Scope.pull(repository));
    }

    /** Uploads {@code file} as blob {@code d} unless the repository already has it. */
    public void pushBlob(String repository, Descriptor d, Path file) {
        blobPush.push(checkRepository(repository), d, file);
    }

    /** Stores {@code body} under {@code reference} (a tag or digest) and returns its digest. */
    public Digest pushManifest(String repository, String reference, String mediaType, byte[] body) {
        return manifestPush.push(checkRepository(repository), checkReference(reference), mediaType, body);
    }

    private static String checkRepository(String repository) {
        if (repository == null || !REPOSITORY.matcher(repository).matches()) {
            throw KilnException.invalid("invalid repository name \"" + repository
                    + "\" (lowercase letters, digits, separators and slashes)");
        }
        return repository;
    }

    private static String checkReference(String reference) {
        if (reference == null || !REFERENCE.matcher(reference).matches()) {
            throw KilnException.invalid("invalid tag or digest \"" + reference + "\"");
        }
        return reference;
    }
}
