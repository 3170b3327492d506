package dev.kiln.image;

/** What a pull or push reports while it works; the CLI renders it (bars on a terminal, lines otherwise, or nothing). */
public interface PullProgress {

    PullProgress NONE = new PullProgress() {
    };

    /** The name resolved to this manifest; {@code layers} is how many blobs follow. */
    default void resolved(ImageRef ref, Digest manifest, int layers) {
    }

    /** The platform manifest is known and its config is stored; its layers follow. */
    default void manifest(Manifest manifest) {
    }

    default void layerStarted(Descriptor layer) {
    }

    default void layerProgress(Descriptor layer, long bytes) {
    }

    /** Done, either fetched ({@code alreadyPresent} false) or skipped because the store had it. */
    default void layerDone(Descriptor layer, boolean alreadyPresent) {
    }
}
