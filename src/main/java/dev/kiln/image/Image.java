package dev.kiln.image;

/**
 * A name pointing at an image: only a reference to a manifest in the content store, as in containerd. The image ID is
 * the config digest, as Docker shows it.
 */
public record Image(String name, Digest manifestDigest, Digest repoDigest, Digest id, long size, String created,
                    long added) {

    public ImageRef ref() {
        return ImageRef.parse(name);
    }
}
