package dev.kiln.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * Fixture images built with independent tools (umoci, skopeo, hand-written tars), never with kiln code.
 *
 * <p>Layouts are built once per JVM into a shared temporary directory (removed at exit) and copied into the
 * caller's {@code work} directory, so a test may modify its copy. Pushes go to the given {@link TestRegistry}.
 *
 * <ul>
 *   <li>{@code busybox}: /bin/busybox plus applet symlinks, /etc/passwd and /etc/group (root, app 1000), /tmp 1777,
 *       Cmd ["sh"], PATH, label {@code dev.kiln.fixture=busybox}.
 *   <li>{@code multi-layer}: see {@link #MULTI_LAYER_GONE} and friends; layers 1–2 by umoci (layer 2 holds
 *       {@code .wh.} whiteouts), layer 3 hand-built because umoci never emits opaque whiteouts.
 *   <li>{@code busybox-zstd}: busybox recompressed by {@code skopeo copy --dest-compress-format zstd}.
 *   <li>{@code multi-platform}: an OCI index of an amd64 and an arm64 image, each with /platform holding its arch.
 * </ul>
 *
 * <p>Pushes use {@code skopeo copy --preserve-digests}, so a pushed manifest's digest equals the layout's.
 */
public final class Fixtures {
    public static final String TAG = "latest";
    public static final String PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    public static final List<String> BUSYBOX_APPLETS =
            List.of("sh", "echo", "true", "false", "cat", "ls", "sleep", "httpd", "id");
    /** Paths of the multi-layer image's first layer that later layers remove (whiteouts, opaque dir). */
    public static final List<String> MULTI_LAYER_GONE =
            List.of("gone-file", "gone-dir", "gone-dir/a", "gone-dir/sub/b", "replaced/old", "replaced/sub/old");
    /** Paths present in the multi-layer image's final rootfs. */
    public static final List<String> MULTI_LAYER_PRESENT = List.of("keep/file", "keep/hardlink", "keep/symlink",
            "setuid", "owned", "fifo", "added-in-2", "replaced", "replaced/new");

    private static final Map<String, Path> LAYOUTS = new HashMap<>();
    private static Path cacheRoot;

    private Fixtures() {}

    // ---- public fixtures ----

    /** The busybox image pushed as {@code HOST/busybox:latest}. */
    public static Fixture busybox(TestRegistry registry, Path work) {
        return push(registry, busyboxLayout(work), "busybox");
    }

    /** The busybox image as an OCI layout only (for import/load tests). */
    public static Fixture busyboxLayout(Path work) {
        return copyInto(work, "busybox", cached("busybox", Fixtures::buildBusybox));
    }

    /** The multi-layer image pushed as {@code HOST/multi-layer:latest}. */
    public static Fixture multiLayer(TestRegistry registry, Path work) {
        return push(registry, multiLayerLayout(work), "multi-layer");
    }

    public static Fixture multiLayerLayout(Path work) {
        return copyInto(work, "multi-layer", cached("multi-layer", Fixtures::buildMultiLayer));
    }

    /** busybox with zstd layers, pushed byte-exactly as {@code HOST/busybox-zstd:latest}. */
    public static Fixture zstd(TestRegistry registry, Path work) {
        Fixture pushed = push(registry, zstdLayout(work), "busybox-zstd");
        String manifest = new String(registry.getManifest("busybox-zstd", TAG).body(), StandardCharsets.UTF_8);
        if (!manifest.contains(LayerTar.ZSTD_TYPE)) throw new IllegalStateException("registry lost the zstd layers: " + manifest);
        return pushed;
    }

    /**
     * busybox recompressed by {@code skopeo copy --dest-compress-format zstd} from layout to layout. (Recompressing
     * while pushing is unreliable with skopeo 1.9: when the registry already has the gzip blob, e.g. from
     * {@link #busybox}, skopeo reuses it via its blob-info cache and pushes gzip.)
     */
    public static Fixture zstdLayout(Path work) {
        return copyInto(work, "busybox-zstd", cached("busybox-zstd", Fixtures::buildZstd));
    }

    /**
     * An index (tag {@code latest}) over {@code amd64} and {@code arm64} manifests (also tagged by arch), pushed as
     * {@code HOST/multi-platform}. The layout's {@code latest} is the same index.
     */
    public static Fixture multiPlatform(TestRegistry registry, Path work) {
        Fixture local = multiPlatformLayout(work);
        Path layout = Path.of(local.ociLayoutDir());
        String name = "multi-platform";
        ArrayNode manifests = OciLayout.json().createArrayNode();
        for (String arch : List.of("amd64", "arm64")) {
            skopeoPush(registry, "oci:" + layout + ":" + arch, "docker://" + registry.ref(name, arch));
            HttpResponse<byte[]> got = registry.getManifest(name, arch);
            if (got.statusCode() != 200) throw new IllegalStateException("GET manifest " + arch + ": " + got.statusCode());
            String digest = OciLayout.sha256(got.body());
            String localDigest = OciLayout.descriptor(layout, arch).get("digest").asText();
            if (!digest.equals(localDigest)) {
                throw new IllegalStateException("registry manifest " + digest + " differs from layout's " + localDigest);
            }
            manifests.add(platformDescriptor(got.headers().firstValue("Content-Type").orElseThrow(), digest,
                    got.body().length, arch));
        }
        byte[] index = indexJson(manifests);
        HttpResponse<byte[]> put = registry.put("/v2/" + name + "/manifests/" + TAG, OciLayout.INDEX_TYPE, index);
        if (put.statusCode() != 201) {
            throw new IllegalStateException("PUT index: " + put.statusCode() + " " + new String(put.body()));
        }
        return new Fixture(local.ociLayoutDir(), TAG, registry.ref(name, TAG));
    }

    public static Fixture multiPlatformLayout(Path work) {
        return copyInto(work, "multi-platform", cached("multi-platform", Fixtures::buildMultiPlatform));
    }

    // ---- builders (run once per JVM, into the cache) ----

    private static void buildBusybox(Path layout, Path scratch) throws IOException {
        Path busybox = Path.of("/usr/bin/busybox");
        Assumptions.assumeTrue(Files.isExecutable(busybox), "/usr/bin/busybox missing (install busybox-static)");
        Umoci.initWithEmptyImage(layout, TAG);
        Path bundle = scratch.resolve("bundle");
        Path root = Umoci.unpack(layout, TAG, bundle);
        dir(root.resolve("bin"), 0755, 0);
        Files.copy(busybox, root.resolve("bin/busybox"));
        chmod(root.resolve("bin/busybox"), 0755);
        for (String applet : BUSYBOX_APPLETS) Files.createSymbolicLink(root.resolve("bin").resolve(applet), Path.of("busybox"));
        dir(root.resolve("etc"), 0755, 0);
        file(root.resolve("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n", 0644, 0);
        file(root.resolve("etc/group"), "root:x:0:\napp:x:1000:\n", 0644, 0);
        dir(root.resolve("root"), 0700, 0);
        dir(root.resolve("home"), 0755, 0);
        dir(root.resolve("home/app"), 0755, 1000);
        dir(root.resolve("tmp"), 01777, 0);
        Umoci.repack(layout, TAG, bundle);
        Umoci.config(layout, TAG, "--config.cmd", "sh", "--config.env", PATH_ENV,
                "--config.label", "dev.kiln.fixture=busybox", "--os", "linux", "--architecture", "amd64");
        Umoci.gc(layout);
    }

    private static void buildMultiLayer(Path layout, Path scratch) throws IOException {
        Umoci.initWithEmptyImage(layout, TAG);
        Path bundle = scratch.resolve("b1");
        Path root = Umoci.unpack(layout, TAG, bundle);          // layer 1: the full cast
        dir(root.resolve("keep"), 0755, 0);
        file(root.resolve("keep/file"), "kept\n", 0644, 0);
        Files.createLink(root.resolve("keep/hardlink"), root.resolve("keep/file"));
        Files.createSymbolicLink(root.resolve("keep/symlink"), Path.of("file"));
        file(root.resolve("setuid"), "#!/bin/sh\necho setuid\n", 04755, 0);
        file(root.resolve("owned"), "owned by app\n", 0640, 1000);
        Command.run("mkfifo", "-m", "0600", root.resolve("fifo").toString());
        file(root.resolve("gone-file"), "deleted in layer 2\n", 0644, 0);
        dir(root.resolve("gone-dir/sub"), 0755, 0);
        file(root.resolve("gone-dir/a"), "a\n", 0644, 0);
        file(root.resolve("gone-dir/sub/b"), "b\n", 0644, 0);
        dir(root.resolve("replaced/sub"), 0755, 0);
        file(root.resolve("replaced/old"), "old\n", 0644, 0);
        file(root.resolve("replaced/sub/old"), "old\n", 0644, 0);
        Umoci.repack(layout, TAG, bundle);

        bundle = scratch.resolve("b2");                          // layer 2: umoci writes .wh.gone-file, .wh.gone-dir
        root = Umoci.unpack(layout, TAG, bundle);
        Files.delete(root.resolve("gone-file"));
        FileTree.deleteRecursively(root.resolve("gone-dir"));
        file(root.resolve("added-in-2"), "layer 2\n", 0644, 0);
        Umoci.repack(layout, TAG, bundle);

        // Layer 3: umoci 0.4.7 repack expresses a replaced directory as one .wh.NAME per removed child and never
        // writes an opaque whiteout, so this layer is a hand-written tar.gz appended to the manifest.
        LayerTar opaque = new LayerTar().dir("replaced", 0755).opaque("replaced").file("replaced/new", "new\n", 0644);
        OciLayout.appendLayer(layout, TAG, opaque.gzip(), LayerTar.GZIP_TYPE, opaque.diffId(),
                "kiln test fixture: opaque whiteout of /replaced (hand-built tar)");
        Umoci.config(layout, TAG, "--config.label", "dev.kiln.fixture=multi-layer",
                "--os", "linux", "--architecture", "amd64");
        Umoci.gc(layout);
    }

    private static void buildZstd(Path layout, Path scratch) {
        Path gzip = cached("busybox", Fixtures::buildBusybox);
        skopeo(List.of("--dest-compress-format", "zstd"), "oci:" + gzip + ":" + TAG, "oci:" + layout + ":" + TAG);
        String manifest = OciLayout.readJsonBlob(layout, OciLayout.descriptor(layout, TAG).get("digest").asText())
                .toString();
        if (!manifest.contains(LayerTar.ZSTD_TYPE)) throw new IllegalStateException("skopeo did not write zstd: " + manifest);
    }

    private static void buildMultiPlatform(Path layout, Path scratch) throws IOException {
        copyTree(cached("busybox", Fixtures::buildBusybox), layout);
        ArrayNode manifests = OciLayout.json().createArrayNode();
        for (String arch : List.of("amd64", "arm64")) {
            Umoci.tag(layout, TAG, arch);
            Path bundle = scratch.resolve(arch);
            Path root = Umoci.unpack(layout, arch, bundle);
            file(root.resolve("platform"), arch + "\n", 0644, 0);
            Umoci.repack(layout, arch, bundle);
            Umoci.config(layout, arch, "--architecture", arch, "--os", "linux",
                    "--config.label", "dev.kiln.fixture=multi-platform-" + arch);
            JsonNode d = OciLayout.descriptor(layout, arch);
            manifests.add(platformDescriptor(d.get("mediaType").asText(), d.get("digest").asText(),
                    d.get("size").asLong(), arch));
        }
        OciLayout.tagBlob(layout, TAG, OciLayout.INDEX_TYPE, indexJson(manifests));
        Umoci.gc(layout);
    }

    private static ObjectNode platformDescriptor(String mediaType, String digest, long size, String arch) {
        ObjectNode d = OciLayout.json().createObjectNode().put("mediaType", mediaType).put("digest", digest)
                .put("size", size);
        d.putObject("platform").put("architecture", arch).put("os", "linux");
        return d;
    }

    private static byte[] indexJson(ArrayNode manifests) {
        ObjectNode index = OciLayout.json().createObjectNode().put("schemaVersion", 2)
                .put("mediaType", OciLayout.INDEX_TYPE);
        index.set("manifests", manifests);
        return OciLayout.bytes(index);
    }

    // ---- cache, copy, push ----

    private interface Builder {
        void build(Path layout, Path scratch) throws IOException;
    }

    private static synchronized Path cached(String name, Builder builder) {
        Path existing = LAYOUTS.get(name);
        if (existing != null) return existing;
        Umoci.require();
        Path layout = cacheRoot().resolve(name);
        Path scratch = cacheRoot().resolve(name + ".scratch");
        try {
            Files.createDirectories(scratch);
            builder.build(layout, scratch);
        } catch (IOException e) {
            FileTree.deleteRecursively(layout);
            throw new UncheckedIOException("building fixture " + name, e);
        } catch (RuntimeException e) {
            FileTree.deleteRecursively(layout);
            throw e;
        } finally {
            FileTree.deleteRecursively(scratch);
        }
        LAYOUTS.put(name, layout);
        return layout;
    }

    private static synchronized Path cacheRoot() {
        if (cacheRoot == null) {
            try {
                Path root = Files.createTempDirectory("kiln-fixtures-");
                Runtime.getRuntime().addShutdownHook(new Thread(() -> FileTree.deleteRecursively(root)));
                cacheRoot = root;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return cacheRoot;
    }

    private static Fixture copyInto(Path work, String name, Path cachedLayout) {
        Path target = work.resolve(name);
        if (!Files.exists(target)) copyTree(cachedLayout, target);
        return new Fixture(target.toString(), TAG, null);
    }

    private static Fixture push(TestRegistry registry, Fixture layout, String name) {
        String ref = registry.ref(name, layout.tag());
        skopeoPush(registry, layout.ociRef(), "docker://" + ref);
        return new Fixture(layout.ociLayoutDir(), layout.tag(), ref);
    }

    private static void skopeoPush(TestRegistry registry, String from, String to) {
        // --preserve-digests: push the layout's bytes as they are (no recompression, no blob substitution)
        List<String> options = new ArrayList<>(List.of("--dest-tls-verify=false", "--preserve-digests"));
        options.addAll(TestRegistry.credsArgs(registry, "--dest-creds"));
        skopeo(options, from, to);
    }

    private static void skopeo(List<String> options, String from, String to) {
        Command.require("skopeo", "skopeo");
        List<String> argv = new ArrayList<>(List.of("skopeo", "--insecure-policy", "copy", "--quiet"));
        argv.addAll(options);
        argv.add(from);
        argv.add(to);
        Command.run(Command.DEFAULT_TIMEOUT, argv);
    }

    private static void copyTree(Path from, Path to) {
        try (Stream<Path> paths = Files.walk(from)) {
            for (Path p : paths.toList()) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) Files.createDirectories(target);
                else Files.copy(p, target, StandardCopyOption.COPY_ATTRIBUTES, LinkOption.NOFOLLOW_LINKS);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot copy " + from + " to " + to, e);
        }
    }

    // ---- rootfs helpers ----

    private static void dir(Path dir, int mode, int owner) throws IOException {
        Files.createDirectories(dir);
        chown(dir, owner);
        chmod(dir, mode);
    }

    private static void file(Path file, String content, int mode, int owner) throws IOException {
        Files.writeString(file, content);
        chown(file, owner);
        chmod(file, mode);   // after chown, which clears setuid
    }

    private static void chmod(Path path, int mode) throws IOException {
        Files.setAttribute(path, "unix:mode", mode, LinkOption.NOFOLLOW_LINKS);
    }

    private static void chown(Path path, int id) throws IOException {
        Files.setAttribute(path, "unix:uid", id, LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(path, "unix:gid", id, LinkOption.NOFOLLOW_LINKS);
    }
}
