package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.image.ContentStore;
import dev.kiln.image.Descriptor;
import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.image.ImageConfig;
import dev.kiln.image.ImageRef;
import dev.kiln.image.ImageStore;
import dev.kiln.image.Manifest;
import dev.kiln.image.MediaType;
import dev.kiln.image.Platform;
import dev.kiln.image.PullProgress;
import dev.kiln.image.registry.Puller;
import dev.kiln.image.registry.Pusher;
import dev.kiln.image.archive.ArchiveLoader;
import dev.kiln.image.archive.ArchiveWriter;
import dev.kiln.image.archive.RootfsImport;
import dev.kiln.image.registry.Credentials;
import dev.kiln.image.registry.RegistryAccess;
import dev.kiln.rootfs.LayerApplier;
import dev.kiln.rootfs.Mounts;
import dev.kiln.rootfs.RootfsCache;
import dev.kiln.state.Database;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** The image operations of kiln (the CLI's and, later, the API's): one owner of the store and the rootfs cache. */
public final class Images implements AutoCloseable {

    private final Database db;
    private final ImageStore store;
    private final RootfsCache rootfs;
    private final Path mounts;
    private final Set<String> insecureRegistries;

    public Images(Path root, Path runRoot, Set<String> insecureRegistries) {
        this.db = Database.open(root);
        ContentStore content = new ContentStore(root);
        this.store = new ImageStore(db, content);
        this.rootfs = new RootfsCache(root.resolve("rootfs"), new LayerApplier(LayerApplier.Limits.defaults()));
        // A crash (of kilnd or the host) mid-download or mid-unpack leaves an ingest file or a half-built tree that
        // nothing will finish (each write has its own random name); one kilnd owns the root, and it does not serve yet.
        content.cleanIngest();
        rootfs.cleanLeftovers();
        this.mounts = runRoot.resolve("image-mounts");
        this.insecureRegistries = Set.copyOf(insecureRegistries);
    }

    Database database() {
        return db;
    }

    public ImageStore store() {
        return store;
    }

    private RegistryAccess access(String registry, Set<String> alsoInsecure) {
        boolean plain = insecureRegistries.contains(registry) || alsoInsecure.contains(registry)
                || RegistryAccess.isLoopback(registry);
        return new RegistryAccess(plain, Credentials.fromDockerConfig());
    }

    public Image pull(String ref, Platform platform, PullProgress progress) {
        return pull(ref, platform, progress, Set.of());
    }

    /** {@code alsoInsecure}: registries this request may reach over plain HTTP ({@code --insecure-registry}). */
    public Image pull(String ref, Platform platform, PullProgress progress, Set<String> alsoInsecure) {
        UnpackWhilePulling unpack = new UnpackWhilePulling(progress, store.content(), rootfs);
        Image image;
        try {
            image = new Puller(store, r -> access(r, alsoInsecure)).pull(ImageRef.parse(ref), platform, unpack);
        } catch (RuntimeException e) {
            unpack.abandon();
            throw e;
        }
        unpack.finish();
        return image;
    }

    public Digest push(String ref, PullProgress progress, Set<String> alsoInsecure) {
        return new Pusher(store, r -> access(r, alsoInsecure)).push(store.resolve(ref), progress);
    }

    /** The images with their names, without the build cache's ({@link ImageStore#BUILD_CACHE}). */
    public List<Image> list() {
        return store.list().stream().filter(i -> !ImageStore.buildCache(i.name())).toList();
    }

    public Image resolve(String ref) {
        return store.resolve(ref);
    }

    public ImageConfig config(Image image) {
        return store.config(image);
    }

    /**
     * The image config's {@code config} object as stored, every field kept (Healthcheck, OnBuild, Shell... which
     * {@link ImageConfig} does not read): what an image inspect shows; an empty object when there is none.
     */
    public com.fasterxml.jackson.databind.JsonNode runtimeConfig(Image image) {
        var c = store.readJson(image.id(), com.fasterxml.jackson.databind.JsonNode.class).get("config");
        return c == null || !c.isObject() ? com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode()
                : c;
    }

    public Manifest manifest(Image image) {
        return store.manifest(image);
    }

    public Image tag(String source, String target) {
        Image src = store.resolve(source);
        return store.tag(ImageRef.parse(target), src.manifestDigest(), src.repoDigest());
    }

    /**
     * Docker's rmi: a name is untagged; the image itself goes when its last name does. An ID naming an image with
     * several names, or an image in use (mounted), is refused unless forced.
     */
    public List<String> remove(String ref, boolean force) {
        return remove(ref, force, false);
    }

    /** {@code keepRootfs}: a sandbox still runs on the unpacked tree, so only names and blobs go. */
    public List<String> remove(String ref, boolean force, boolean keepRootfs) {
        Image image = store.resolve(ref);
        List<Image> names = store.namesOf(image.id());
        boolean byId = ref.matches("(sha256:)?[a-f0-9]{4,64}") && !image.name().equals(ImageRef.parse(ref).toString());
        Path mount = mountPoint(image.id());
        boolean lastName = byId || names.size() == 1;
        if (lastName && Mounts.isMounted(mount)) {
            if (!force) {
                throw KilnException.conflict("image " + ref + " is in use: mounted at " + mount
                        + " (run 'kiln image unmount " + ref + "' or use -f)");
            }
            Mounts.unmount(mount, true);
        }
        if (byId && names.size() > 1 && !force) {
            throw KilnException.conflict("image " + image.id().shortId() + " is referenced by " + names.size()
                    + " names (remove them by name or use -f)");
        }
        List<String> out = new ArrayList<>();
        for (Image n : byId ? names : List.of(image)) {
            store.untag(n.name());
            out.add("Untagged: " + n.ref().familiar());
        }
        if (store.namesOf(image.id()).isEmpty()) {
            if (!keepRootfs) {
                rootfs.remove(image.id());
            }
            store.collectGarbage();
            db.restoreReserve(); // space was freed: take back the room a full disk made kiln give up
            out.add("Deleted: " + image.id());
        }
        return out;
    }

    /** The image's unpacked tree, built once per image ID. */
    public Path rootfs(Image image) {
        Manifest m = store.manifest(image);
        List<RootfsCache.Layer> layers = new ArrayList<>();
        for (Descriptor d : m.layers()) {
            Digest digest = d.contentDigest();
            layers.add(new RootfsCache.Layer(store.content().path(digest), MediaType.layerCompression(d.mediaType()),
                    digest));
        }
        return rootfs.unpack(image.id(), layers);
    }

    /**
     * The image's unpacked tree, made from {@code base}'s when the image's layers extend base's (a build step on its
     * parent; base's tree is unpacked first if it is not): only the new layers are applied, onto a hard-link copy of
     * base's tree.
     */
    public Path rootfs(Image image, Image base) {
        if (base == null || rootfs.has(image.id())) {
            return rootfs(image);
        }
        List<Descriptor> mine = store.manifest(image).layers();
        List<Descriptor> theirs = store.manifest(base).layers();
        if (mine.size() < theirs.size() || !mine.subList(0, theirs.size()).equals(theirs)) {
            return rootfs(image);
        }
        List<RootfsCache.Layer> extra = new ArrayList<>();
        for (Descriptor d : mine.subList(theirs.size(), mine.size())) {
            Digest digest = d.contentDigest();
            extra.add(new RootfsCache.Layer(store.content().path(digest), MediaType.layerCompression(d.mediaType()),
                    digest));
        }
        // base's tree, unpacked if it is not yet (a build's FROM image: kept, as a run of it would keep it)
        return rootfs.derive(image.id(), rootfs(base), extra);
    }

    /** Where the unpacked tree of an image ID is (or will be); sandboxes keep using it after an rmi -f. */
    public Path rootfsPath(Digest imageId) {
        return rootfs.path(imageId);
    }

    public ImageConfig configOf(Digest imageId) {
        return store.readJson(imageId, ImageConfig.class);
    }

    public Path mount(String ref) {
        Image image = store.resolve(ref);
        Path tree = rootfs(image);
        Path target = mountPoint(image.id());
        if (!Mounts.isMounted(target)) {
            Mounts.bindReadOnly(tree, target);
        }
        return target;
    }

    public void unmount(String ref) {
        Image image = store.resolve(ref);
        Path target = mountPoint(image.id());
        if (!Mounts.isMounted(target)) {
            throw KilnException.invalid("image " + ref + " is not mounted");
        }
        Mounts.unmount(target, true);
    }

    private Path mountPoint(Digest id) {
        return mounts.resolve(id.hex());
    }

    public List<Image> load(Path source, InputStream stdin) {
        return new ArchiveLoader(store).load(source, stdin);
    }

    public List<Image> load(InputStream tar, String nameHint) {
        return new ArchiveLoader(store).load(null, tar, nameHint);
    }

    public void save(List<String> refs, OutputStream tar) {
        try {
            new ArchiveWriter(store).writeTar(resolveAll(refs), tar);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private List<Image> resolveAll(List<String> refs) {
        Set<Image> out = new LinkedHashSet<>();
        refs.forEach(r -> out.add(store.resolve(r)));
        return List.copyOf(out);
    }

    public Image importRootfs(Path tarball, InputStream stdin, String ref) {
        return new RootfsImport(store).importTar(tarball, stdin, ImageRef.parse(ref));
    }

    @Override
    public void close() {
        db.close();
    }
}
