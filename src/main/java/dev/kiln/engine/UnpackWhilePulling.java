package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.image.ContentStore;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.ImageRef;
import dev.kiln.image.Manifest;
import dev.kiln.image.MediaType;
import dev.kiln.image.PullProgress;
import dev.kiln.rootfs.RootfsCache;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Unpacks an image's layers in order while the pull still downloads later ones, as containerd and podman do: the
 * pull's time becomes about the longer of download and unpack instead of their sum. Passes every event on to the
 * caller's progress. The pull waits for the unpack at its end ({@link #finish}); a failed pull abandons it, and the
 * rootfs cache keeps nothing.
 */
final class UnpackWhilePulling implements PullProgress {

    private final PullProgress next;
    private final ContentStore content;
    private final RootfsCache rootfs;
    private final Map<Digest, CountDownLatch> stored = new ConcurrentHashMap<>();
    private volatile boolean abandoned;
    private Thread unpacker;
    private volatile RuntimeException failure;

    UnpackWhilePulling(PullProgress next, ContentStore content, RootfsCache rootfs) {
        this.next = next;
        this.content = content;
        this.rootfs = rootfs;
    }

    @Override
    public void resolved(ImageRef ref, Digest manifest, int layers) {
        next.resolved(ref, manifest, layers);
    }

    @Override
    public void manifest(Manifest manifest) {
        next.manifest(manifest);
        Digest imageId = manifest.config().contentDigest();
        if (rootfs.has(imageId)) {
            return;
        }
        List<RootfsCache.Layer> layers = new ArrayList<>();
        for (Descriptor d : manifest.layers()) {
            Digest digest = d.contentDigest();
            stored.computeIfAbsent(digest, x -> new CountDownLatch(1));
            layers.add(new RootfsCache.Layer(content.blobPath(digest), MediaType.layerCompression(d.mediaType()),
                    digest));
        }
        unpacker = Thread.ofVirtual().name("unpack-" + imageId.shortId()).start(() -> {
            try {
                rootfs.unpack(imageId, layers, this::awaitStored);
            } catch (RuntimeException e) {
                failure = e;
            }
        });
    }

    private void awaitStored(RootfsCache.Layer layer) {
        CountDownLatch latch = stored.get(layer.digest());
        try {
            while (!latch.await(100, TimeUnit.MILLISECONDS)) {
                if (abandoned) {
                    throw new KilnException(KilnException.Kind.INTERNAL, "pull failed; unpack abandoned");
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "unpack interrupted");
        }
    }

    @Override
    public void layerStarted(Descriptor layer) {
        next.layerStarted(layer);
    }

    @Override
    public void layerProgress(Descriptor layer, long bytes) {
        next.layerProgress(layer, bytes);
    }

    @Override
    public void layerDone(Descriptor layer, boolean alreadyPresent) {
        CountDownLatch latch = stored.computeIfAbsent(layer.contentDigest(), x -> new CountDownLatch(1));
        latch.countDown();
        next.layerDone(layer, alreadyPresent);
    }

    /** After a successful pull: waits for the unpack and reports its failure (a hostile layer, say). */
    void finish() {
        join();
        if (failure != null) {
            throw failure;
        }
    }

    /** After a failed pull: stops the unpack, which then removes what it wrote. */
    void abandon() {
        abandoned = true;
        join();
    }

    private void join() {
        if (unpacker == null) {
            return;
        }
        try {
            unpacker.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
