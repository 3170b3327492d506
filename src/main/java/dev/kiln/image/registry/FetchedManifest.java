package dev.kiln.image.registry;

import dev.kiln.image.Digest;

/**
 * A manifest or index exactly as the registry served it, with its verified digest. The bytes are kept as they came
 * because the digest covers them: re-serialising would change it.
 */
public record FetchedManifest(String mediaType, Digest digest, byte[] bytes) {
}
