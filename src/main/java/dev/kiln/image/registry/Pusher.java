package dev.kiln.image.registry;

import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.image.ImageRef;
import dev.kiln.image.ImageStore;
import dev.kiln.image.Manifest;
import dev.kiln.image.MediaType;
import dev.kiln.image.PullProgress;

import java.util.function.Function;

/** Pushes an image from the store to its name's registry: layers and config first, the manifest last. */
public final class Pusher {

    private final ImageStore store;
    private final Function<String, RegistryAccess> accessForHost;

    public Pusher(ImageStore store, Function<String, RegistryAccess> accessForHost) {
        this.store = store;
        this.accessForHost = accessForHost;
    }

    public Digest push(Image image, PullProgress progress) {
        ImageRef ref = image.ref();
        RegistryClient client = RegistryClient.connect(ref.apiHost(), accessForHost.apply(ref.registry()));
        Manifest m = store.manifest(image);
        progress.resolved(ref, image.manifestDigest(), m.layers().size());
        for (Descriptor layer : m.layers()) {
            progress.layerStarted(layer);
            client.pushBlob(ref.repository(), layer, store.content().path(layer.contentDigest()));
            progress.layerDone(layer, false);
        }
        client.pushBlob(ref.repository(), m.config(), store.content().path(m.config().contentDigest()));
        byte[] body = store.content().read(image.manifestDigest());
        String mediaType = m.mediaType() != null ? m.mediaType() : MediaType.OCI_MANIFEST;
        return client.pushManifest(ref.repository(), ref.reference(), mediaType, body);
    }
}
