package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.KilnException;
import dev.kiln.api.ArchiveRoutes;
import dev.kiln.rootfs.TreeArchive;
import dev.kiln.rootfs.LayerApplier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.InputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Base64;
import java.util.Optional;

/**
 * {@code kiln cp SANDBOX:PATH HOSTPATH|-} and {@code kiln cp HOSTPATH|- SANDBOX:PATH}, with docker cp's rules: into
 * an existing directory the source keeps its name, to a path that does not exist it takes that name; {@code -} is a
 * tar on stdout or stdin. Through kilnd's {@code /v1/sandboxes/{id}/archive}. What comes out of a sandbox is
 * unpacked with the same guarded extractor kilnd uses for layers, inside the destination only.
 */
@Command(name = "cp", description = "Copy files between a sandbox and the host (docker cp's syntax)")
final class CpCommand extends Subcommand {

    @Parameters(index = "0", paramLabel = "SRC", description = "SANDBOX:PATH, a host path, or - (a tar on stdin)")
    String source;

    @Parameters(index = "1", paramLabel = "DEST", description = "SANDBOX:PATH, a host path, or - (a tar on stdout)")
    String destination;

    @Option(names = {"-a", "--archive"}, description = "Keep the files' owners (uid:gid) when copying in")
    boolean archive;

    @Option(names = {"-L", "--follow-link"}, description = "Copy what a symlink source points to")
    boolean followLink;

    /** {@code SANDBOX:PATH}; a colon after a slash, or a leading . or /, is part of a host path (as docker cp). */
    private record Remote(String sandbox, String path) {
        static Optional<Remote> parse(String arg) {
            int colon = arg.indexOf(':');
            if (colon <= 0 || arg.startsWith("/") || arg.startsWith(".") || arg.substring(0, colon).contains("/")) {
                return Optional.empty();
            }
            String path = arg.substring(colon + 1);
            return Optional.of(new Remote(arg.substring(0, colon), path.isEmpty() ? "/" : path));
        }
    }

    @Override
    int run(DaemonClient daemon) throws Exception {
        Optional<Remote> from = Remote.parse(source);
        Optional<Remote> to = Remote.parse(destination);
        if (from.isPresent() == to.isPresent()) {
            throw KilnException.invalid("copying between sandboxes or between host paths is not supported: one of "
                    + "SRC and DEST must be SANDBOX:PATH");
        }
        if (from.isPresent()) {
            copyOut(daemon, from.get());
        } else {
            copyIn(daemon, to.get());
        }
        return 0;
    }

    private void copyOut(DaemonClient daemon, Remote from) throws IOException {
        String path = from.path();
        if (followLink) {
            String target = stat(daemon, from.sandbox(), path).path("linkTarget").asText("");
            path = target.isEmpty() ? path : target;
        }
        try (DaemonClient.Response r = daemon.call("GET", archivePath(from.sandbox(), path)).ok()) {
            if (destination.equals("-")) {
                r.body.transferTo(stdio().out());
                stdio().out().flush();
                return;
            }
            extractLocally(r.body, Path.of(destination));
        }
    }

    /**
     * The tar's top entry lands in {@code dest} when it is a directory (merged into what is there, as tar does),
     * else takes {@code dest}'s name: extracted into a fresh directory next to {@code dest} (same filesystem), then
     * moved into place. Either way through the guarded extractor: the sandbox chose the archive's symlinks.
     */
    private static void extractLocally(InputStream tar, Path dest) throws IOException {
        Path target = dest.toAbsolutePath().normalize();
        LayerApplier applier = new LayerApplier(LayerApplier.Limits.defaults());
        LayerApplier.Extraction how = new LayerApplier.Extraction(true, false, false);
        if (Files.isSymbolicLink(target)) {
            // never followed: an earlier copy out of a sandbox may have planted it (e.g. pointing at /), and the
            // sandbox chose this archive's content
            throw KilnException.invalid("destination " + target + " is a symbolic link: kiln cp does not follow it "
                    + "(name the directory it points to)");
        }
        if (Files.isDirectory(target, LinkOption.NOFOLLOW_LINKS)) {
            applier.extract(tar, target, "", how);
            return;
        }
        Path parent = target.getParent();
        if (!Files.isDirectory(parent)) {
            throw KilnException.notFound("destination directory " + parent + " does not exist");
        }
        Path staging = Files.createTempDirectory(parent, ".kiln-cp-");
        try {
            applier.extract(tar, staging, "", how);
            try (var top = Files.list(staging)) {
                for (Path entry : top.toList()) {
                    if (Files.isDirectory(entry, LinkOption.NOFOLLOW_LINKS)
                            && Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
                        throw KilnException.invalid("cannot copy a directory to " + target + ", which is a file");
                    }
                    Files.move(entry, target, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        } finally {
            dev.kiln.rootfs.Trees.delete(staging);
        }
    }

    private void copyIn(DaemonClient daemon, Remote to) throws IOException {
        if (source.equals("-")) {
            put(daemon, to.sandbox(), to.path(), stdio().in());
            return;
        }
        Path src = Path.of(source).toAbsolutePath().normalize();
        if (!Files.exists(src, LinkOption.NOFOLLOW_LINKS)) {
            throw KilnException.notFound("could not find " + source + " on the host");
        }
        JsonNode dest = statOrNull(daemon, to.sandbox(), to.path());
        boolean intoDir = dest != null && (dest.path("mode").asLong() & (1L << 31)) != 0;
        if (dest == null && to.path().endsWith("/")) {
            throw KilnException.notFound("no such directory " + to.path() + " in sandbox " + to.sandbox());
        }
        String trimmed = to.path().replaceAll("/+$", "");
        String dir = intoDir ? to.path() : trimmed.contains("/") ? trimmed.substring(0, trimmed.lastIndexOf('/') + 1)
                : "/";
        String name = intoDir ? src.getFileName().toString() : trimmed.substring(trimmed.lastIndexOf('/') + 1);
        put(daemon, to.sandbox(), dir, tarOf(src, name));
    }

    private void put(DaemonClient daemon, String sandbox, String dir, InputStream tar) throws IOException {
        try (InputStream in = tar;
             DaemonClient.Response r = daemon.stream("PUT", archivePath(sandbox, dir) + "&noOverwriteDirNonDir=true"
                     + (archive ? "&copyUIDGID=true" : ""), "application/x-tar", in).ok()) {
            r.bytes();
        }
    }

    /** A tar of {@code src} named {@code name}, written by a virtual thread as kilnd reads it. */
    private static InputStream tarOf(Path src, String name) throws IOException {
        PipedInputStream in = new PipedInputStream(1 << 16);
        PipedOutputStream pipe = new PipedOutputStream(in);
        Thread.ofVirtual().start(() -> {
            try (pipe) {
                TreeArchive.tar(src, name, pipe);
            } catch (IOException e) {
                // kilnd sees a truncated tar and reports it
            }
        });
        return in;
    }

    private static JsonNode stat(DaemonClient daemon, String sandbox, String path) throws IOException {
        JsonNode stat = statOrNull(daemon, sandbox, path);
        if (stat == null) {
            throw KilnException.notFound("Could not find the file " + path + " in sandbox " + sandbox);
        }
        return stat;
    }

    /** The stat header of a HEAD, or null when the path is not there (other errors are thrown). */
    private static JsonNode statOrNull(DaemonClient daemon, String sandbox, String path) throws IOException {
        try (DaemonClient.Response r = daemon.call("HEAD", archivePath(sandbox, path))) {
            if (r.status == 404) {
                // HEAD has no body to say which is missing: the sandbox, or the path in it
                daemon.call("GET", "/v1/sandboxes/" + q(sandbox)).ok().close();
                return null;
            }
            if (r.status / 100 != 2) {
                // a HEAD answer has no body: the same GET says why in kilnd's words
                daemon.call("GET", archivePath(sandbox, path)).ok().close();
                throw new KilnException(KilnException.Kind.INTERNAL, "kilnd answered " + r.status + " to a stat of "
                        + path + " in sandbox " + sandbox);
            }
            String header = r.headers.get(ArchiveRoutes.STAT_HEADER.toLowerCase(java.util.Locale.ROOT));
            return DaemonClient.JSON.readTree(new String(Base64.getDecoder().decode(header), StandardCharsets.UTF_8));
        }
    }

    private static String archivePath(String sandbox, String path) {
        return "/v1/sandboxes/" + q(sandbox) + "/archive?path=" + q(path);
    }
}
