package dev.kiln.image.registry;

import dev.kiln.KilnException;
import dev.kiln.image.ContentStore;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.image.ImageRef;
import dev.kiln.image.ImageStore;
import dev.kiln.image.Index;
import dev.kiln.image.Manifest;
import dev.kiln.image.MediaType;
import dev.kiln.image.Platform;
import dev.kiln.image.PullProgress;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.function.Function;

/**
 * Pulls an image into the store: resolve the name (index → the platform's manifest), then fetch config and layers
 * in parallel, skipping blobs already present. Every blob is verified by the content store before it is kept; the
 * name is written last, so a failed pull never leaves a name pointing at missing content.
 */
public final class Puller {

    /** Like Docker's default max-concurrent-downloads. */
    private static final int PARALLEL_LAYERS = 3;
    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();

    private final ImageStore store;
    private final Function<String, RegistryAccess> accessForHost;

    public Puller(ImageStore store, Function<String, RegistryAccess> accessForHost) {
        this.store = store;
        this.accessForHost = accessForHost;
    }

    public Image pull(ImageRef ref, Platform platform, PullProgress progress) {
        RegistryClient client = RegistryClient.connect(ref.apiHost(), accessForHost.apply(ref.registry()));
        String repo = ref.repository();
        FetchedManifest top = client.fetchManifest(repo, ref.reference());
        if (ref.digest() != null && !ref.digest().equals(top.digest())) {
            throw KilnException.corrupt("registry returned " + top.digest() + " for " + ref + " (digest mismatch)");
        }
        FetchedManifest chosen = top;
        if (MediaType.isIndex(top.mediaType())) {
            Index index = parse(top, Index.class);
            Descriptor d = index.select(platform).orElseThrow(() -> KilnException.notFound("image " + ref.familiar()
                    + " has no manifest for platform " + platform + " (available: " + platforms(index) + ")"));
            chosen = client.fetchManifest(repo, d.digest());
            if (!chosen.digest().equals(d.contentDigest())) {
                throw KilnException.corrupt("registry returned " + chosen.digest() + " for " + d.digest());
            }
            store.content().put(top.bytes());
        } else if (!MediaType.isManifest(top.mediaType())) {
            throw KilnException.invalid("image " + ref.familiar() + " has unsupported manifest type "
                    + top.mediaType() + " (kiln reads OCI and Docker v2 schema 2 images)");
        }
        Manifest manifest = parse(chosen, Manifest.class);
        if (manifest.config() == null || manifest.layers() == null) {
            throw KilnException.corrupt("manifest " + chosen.digest() + " of " + ref.familiar() + " has no config or layers");
        }
        progress.resolved(ref, chosen.digest(), manifest.layers().size());

        fetch(client, repo, manifest.config(), PullProgress.NONE);
        progress.manifest(manifest);
        List<Descriptor> layers = manifest.layers();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            Semaphore slots = new Semaphore(PARALLEL_LAYERS);
            List<Future<?>> jobs = new ArrayList<>();
            for (Descriptor layer : layers) {
                jobs.add(pool.submit(() -> {
                    slots.acquireUninterruptibly();
                    try {
                        fetch(client, repo, layer, progress);
                    } finally {
                        slots.release();
                    }
                    return null;
                }));
            }
            for (Future<?> job : jobs) {
                await(job, jobs);
            }
        }
        store.content().put(chosen.bytes());
        return store.tag(ref.digest() != null && ref.tag() == null ? ref : ref.withDigest(null), chosen.digest(),
                top.digest());
    }

    private void fetch(RegistryClient client, String repo, Descriptor d, PullProgress progress) {
        Digest digest = d.contentDigest();
        if (store.content().has(digest)) {
            progress.layerDone(d, true);
            return;
        }
        progress.layerStarted(d);
        try (ContentStore.Writer w = store.content().writer(digest, d.size())) {
            client.fetchBlob(repo, d, w, n -> progress.layerProgress(d, n));
            w.commit();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        progress.layerDone(d, false);
    }

    private static void await(Future<?> job, List<Future<?>> all) {
        try {
            job.get();
        } catch (ExecutionException e) {
            all.forEach(j -> j.cancel(true));
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            throw new UncheckedIOException(new IOException(e.getCause()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "pull interrupted");
        }
    }

    private <T> T parse(FetchedManifest m, Class<T> type) {
        try {
            return JSON.readValue(m.bytes(), type);
        } catch (IOException e) {
            throw KilnException.corrupt("manifest " + m.digest() + " is not valid JSON: "
                    + e.getMessage().lines().findFirst().orElse(""));
        }
    }

    private static String platforms(Index index) {
        return String.join(", ", index.manifests().stream()
                .filter(d -> d.platform() != null).map(d -> d.platform().toString()).toList());
    }
}
