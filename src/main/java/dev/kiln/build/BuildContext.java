package dev.kiln.build;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;
import dev.kiln.dockerfile.DockerIgnore;
import dev.kiln.dockerfile.Dockerfile;
import dev.kiln.rootfs.LayerApplier;
import dev.kiln.rootfs.RootPaths;
import dev.kiln.rootfs.Trees;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.UUID;

/**
 * A build's context on kilnd's side: the client's tar (plain, gzip or bzip2) extracted into a directory of its own
 * with the layer code's guarantees (no entry lands outside it; symlinks are kept as links, to be resolved inside the
 * context when read), the Dockerfile read from it, and what {@code .dockerignore} excludes deleted, so COPY and ADD
 * never see it. The Dockerfile and .dockerignore are always sent and read; when ignored they are deleted after
 * reading, as Docker's builder does, so only COPY and ADD miss them.
 */
public final class BuildContext implements AutoCloseable {
    /** Bytes of a Dockerfile kilnd reads at most: a Dockerfile is text a person wrote. */
    private static final long MAX_DOCKERFILE = 4 << 20;
    private static final LayerApplier APPLIER = new LayerApplier(LayerApplier.Limits.defaults());

    private final Path dir;
    private final Dockerfile dockerfile;

    private BuildContext(Path dir, Dockerfile dockerfile) {
        this.dir = dir;
        this.dockerfile = dockerfile;
    }

    /** Extracts {@code tar} under {@code buildRoot} and reads Dockerfile {@code dockerfileName} from it. */
    public static BuildContext fromTar(InputStream tar, Path buildRoot, String dockerfileName) {
        Path dir = buildRoot.resolve("context-" + UUID.randomUUID());
        try {
            Files.createDirectories(buildRoot, OwnerOnly.DIRECTORY);
            Files.createDirectory(dir, OwnerOnly.DIRECTORY);
            try (InputStream in = decompressed(new BufferedInputStream(tar, 1 << 16))) {
                APPLIER.extract(in, dir, "", new LayerApplier.Extraction(false, false, false));
            } catch (KilnException e) {
                throw KilnException.invalid("the build context is not a valid tar archive: " + e.getMessage());
            }
            return new BuildContext(dir, prepare(dir, dockerfileName));
        } catch (IOException e) {
            Trees.delete(dir);
            throw KilnException.invalid("cannot read the build context: " + e.getMessage());
        } catch (RuntimeException e) {
            Trees.delete(dir);
            throw e;
        }
    }

    public Path dir() {
        return dir;
    }

    public Dockerfile dockerfile() {
        return dockerfile;
    }

    private static Dockerfile prepare(Path dir, String name) throws IOException {
        String clean = name.replaceAll("^(\\./)+", "");
        String text = read(dir, clean);
        if (text == null) {
            throw KilnException.invalid("Cannot locate specified Dockerfile: " + name);
        }
        String ignoreText = read(dir, ".dockerignore");
        DockerIgnore ignore = ignoreText == null ? DockerIgnore.none() : DockerIgnore.parse(ignoreText);
        Dockerfile parsed = Dockerfile.parse(clean, text);
        if (!ignore.isEmpty()) {
            prune(dir, ignore);
        }
        return parsed;
    }

    /** A regular file of the context (its symlinks resolved inside it), or null when there is none. */
    private static String read(Path dir, String name) throws IOException {
        try {
            RootPaths.Resolved r = RootPaths.follow(dir, RootPaths.resolve(dir, name));
            BasicFileAttributes a = r.attributes();
            if (a == null || !a.isRegularFile()) {
                return null;
            }
            if (a.size() > MAX_DOCKERFILE) {
                throw KilnException.invalid(name + " is " + a.size() + " bytes; kiln reads at most " + MAX_DOCKERFILE);
            }
            return Files.readString(r.host(), StandardCharsets.UTF_8);
        } catch (KilnException e) {
            if (e.kind() == KilnException.Kind.NOT_FOUND) {
                return null;
            }
            throw e;
        }
    }

    /** Deletes what the .dockerignore excludes (the Dockerfile and .dockerignore too, when it names them). */
    private static void prune(Path dir, DockerIgnore ignore) throws IOException {
        boolean exceptions = ignore.hasExceptions();
        Files.walkFileTree(dir, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes a) {
                if (d.equals(dir)) {
                    return FileVisitResult.CONTINUE;
                }
                if (ignore.excluded(dir.relativize(d).toString()) && !exceptions) {
                    Trees.delete(d);
                    return FileVisitResult.SKIP_SUBTREE;
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                if (ignore.excluded(dir.relativize(f).toString())) {
                    Files.delete(f);
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                if (!d.equals(dir) && ignore.excluded(dir.relativize(d).toString())) {
                    try (var s = Files.list(d)) {
                        if (s.findAny().isEmpty()) {
                            Files.delete(d); // an excluded directory that held no exception
                        }
                    }
                }
                return FileVisitResult.CONTINUE;
            }
        });
    }

    private static InputStream decompressed(BufferedInputStream in) throws IOException {
        in.mark(4);
        byte[] head = in.readNBytes(3);
        in.reset();
        if (head.length >= 2 && (head[0] & 0xff) == 0x1f && (head[1] & 0xff) == 0x8b) {
            return new GzipCompressorInputStream(in, true);
        }
        if (head.length >= 3 && head[0] == 'B' && head[1] == 'Z' && head[2] == 'h') {
            return new BZip2CompressorInputStream(in, true);
        }
        return in;
    }

    /**
     * Deletes the context after the build's answer has ended: a source tree of thousands of files takes seconds to
     * delete on a busy host, which the client would otherwise wait for after "Successfully tagged".
     */
    @Override
    public void close() {
        Thread.ofVirtual().name("build-context-delete").start(() -> Trees.delete(dir));
    }
}
