package dev.kiln.cli;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPOutputStream;

/**
 * The training run behind kilnd's AOT cache (scripts/aot-cache, issue 17): starts kilnd with
 * {@code -XX:AOTCacheOutput} on throw-away roots, serves it a one-layer busybox image from a registry in this JVM
 * (loopback, so plain HTTP), and has it pull the image and run it (network none, so nothing is made on the host's
 * network), then stops it; the JVM writes the cache as kilnd exits. A first pull and a first run after kilnd starts
 * then find their classes (registry client, unpack, SQLite, runc bundle, Jetty) loaded and linked. This JVM records
 * nothing. Not part of kiln's user interface.
 *
 * <p>Arguments: DIR (a temporary directory), CACHE (the cache to write), then kilnd's JVM flags, which must be the
 * ones the cache will be used with (bin/kiln, {@link DaemonStarter}).
 */
public final class KilndTraining {
    private KilndTraining() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        Path cache = Path.of(args[1]);
        List<String> flags = List.of(args).subList(2, args.length);
        Path busybox = Path.of("/bin/busybox");
        HttpServer registry = registry(Files.isRegularFile(busybox) ? Files.readAllBytes(busybox) : null);
        Path run = dir.resolve("run");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new java.util.ArrayList<>(List.of(java, "-XX:AOTCacheOutput=" + cache, "-Xlog:aot=error",
                "-Xlog:cds=error"));
        cmd.addAll(flags);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName(), "daemon", "--root",
                dir.resolve("root").toString(), "--run-root", run.toString(), "--config", "/nonexistent"));
        Process kilnd = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("kilnd.log").toFile()).start();
        try {
            waitForSocket(kilnd, run.resolve("kiln.sock"));
            String host = "unix://" + run.resolve("kiln.sock");
            String image = "127.0.0.1:" + registry.getAddress().getPort() + "/train:1";
            List<String[]> runs = List.of(
                    new String[] {"--host", host, "pull", image},
                    new String[] {"--host", host, "images"},
                    new String[] {"--host", host, "run", "--rm", "--network", "none", image, "true"},
                    new String[] {"--host", host, "run", "-d", "--name", "t", "--network", "none", image, "sleep", "30"},
                    new String[] {"--host", host, "ps"},
                    new String[] {"--host", host, "exec", "t", "true"},
                    new String[] {"--host", host, "logs", "t"},
                    new String[] {"--host", host, "inspect", "t"},
                    new String[] {"--host", host, "rm", "-f", "t"},
                    new String[] {"--host", host, "rmi", image});
            for (String[] r : runs) {
                Main.run(r, new Main.Stdio(new ByteArrayInputStream(new byte[0]), new ByteArrayOutputStream(),
                        new ByteArrayOutputStream()));
            }
        } finally {
            kilnd.destroy(); // SIGTERM: kilnd shuts down and the JVM writes the cache on its way out
            if (!kilnd.waitFor(120, TimeUnit.SECONDS)) {
                kilnd.destroyForcibly().waitFor();
            }
            registry.stop(0);
        }
    }

    private static void waitForSocket(Process p, Path socket) throws IOException, InterruptedException {
        DaemonClient probe = new DaemonClient(socket);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline && p.isAlive()) {
            try {
                probe.connect().close();
                return;
            } catch (IOException notYet) {
                Thread.sleep(100);
            }
        }
        throw new IOException("the training's kilnd did not start");
    }

    /** A registry on 127.0.0.1 serving train:1, busybox with sh and true (or an empty layer without busybox). */
    private static HttpServer registry(byte[] busybox) throws IOException, NoSuchAlgorithmException {
        byte[] tar = layer(busybox);
        byte[] gz;
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (GZIPOutputStream z = new GZIPOutputStream(b)) {
            z.write(tar);
        }
        gz = b.toByteArray();
        byte[] config = ("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/sh\"]},"
                + "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" + digest(tar) + "\"]}}")
                .getBytes(StandardCharsets.UTF_8);
        byte[] manifest = ("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                + "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\""
                + digest(config) + "\",\"size\":" + config.length + "},\"layers\":[{\"mediaType\":"
                + "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" + digest(gz) + "\",\"size\":"
                + gz.length + "}]}").getBytes(StandardCharsets.UTF_8);
        Map<String, byte[]> blobs = Map.of(digest(config), config, digest(gz), gz);
        String manifestDigest = digest(manifest);
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 16);
        server.createContext("/v2/", ex -> {
            String path = ex.getRequestURI().getPath();
            if (path.equals("/v2/")) {
                reply(ex, 200, "application/json", "{}".getBytes(StandardCharsets.UTF_8), null);
            } else if (path.equals("/v2/train/manifests/1") || path.equals("/v2/train/manifests/" + manifestDigest)) {
                reply(ex, 200, "application/vnd.oci.image.manifest.v1+json", manifest, manifestDigest);
            } else if (path.startsWith("/v2/train/blobs/") && blobs.containsKey(path.substring(16))) {
                reply(ex, 200, "application/octet-stream", blobs.get(path.substring(16)), path.substring(16));
            } else {
                reply(ex, 404, "application/json", "{\"errors\":[{\"code\":\"NOT_FOUND\"}]}"
                        .getBytes(StandardCharsets.UTF_8), null);
            }
        });
        server.start();
        return server;
    }

    private static void reply(HttpExchange ex, int status, String type, byte[] body, String digest)
            throws IOException {
        ex.getResponseHeaders().set("Content-Type", type);
        if (digest != null) {
            ex.getResponseHeaders().set("Docker-Content-Digest", digest);
        }
        boolean head = ex.getRequestMethod().equals("HEAD");
        ex.sendResponseHeaders(status, head ? -1 : body.length);
        if (!head) {
            try (OutputStream out = ex.getResponseBody()) {
                out.write(body);
            }
        }
        ex.close();
    }

    private static byte[] layer(byte[] busybox) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(b)) {
            TarArchiveEntry bin = new TarArchiveEntry("bin/");
            bin.setMode(040755);
            tar.putArchiveEntry(bin);
            tar.closeArchiveEntry();
            if (busybox != null) {
                TarArchiveEntry e = new TarArchiveEntry("bin/busybox");
                e.setMode(0100755);
                e.setSize(busybox.length);
                tar.putArchiveEntry(e);
                tar.write(busybox);
                tar.closeArchiveEntry();
                for (String applet : List.of("sh", "true", "sleep")) {
                    TarArchiveEntry l = new TarArchiveEntry("bin/" + applet, TarArchiveEntry.LF_SYMLINK);
                    l.setLinkName("busybox");
                    tar.putArchiveEntry(l);
                    tar.closeArchiveEntry();
                }
            }
        }
        return b.toByteArray();
    }

    private static String digest(byte[] data) throws NoSuchAlgorithmException {
        return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    }
}
