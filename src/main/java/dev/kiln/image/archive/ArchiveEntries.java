package dev.kiln.image.archive;

import dev.kiln.KilnException;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * The regular files of an image archive, read once in order: a tar ({@code docker save}, OCI layout tar) or an OCI
 * layout directory. Names are relative with {@code ./} stripped. Nothing is written to disk by name, so a hostile
 * name can at worst be ignored.
 */
interface ArchiveEntries {

    interface Visitor {
        void file(String name, long size, InputStream content) throws IOException;
    }

    void forEach(Visitor v) throws IOException;

    static ArchiveEntries open(Path source) {
        if (Files.isDirectory(source)) {
            return v -> {
                List<Path> files;
                try (Stream<Path> s = Files.walk(source)) {
                    files = s.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)).sorted().toList();
                }
                for (Path p : files) {
                    try (InputStream in = Files.newInputStream(p)) {
                        v.file(source.relativize(p).toString(), Files.size(p), in);
                    }
                }
            };
        }
        if (!Files.isRegularFile(source)) {
            throw KilnException.notFound("archive " + source + " does not exist");
        }
        return v -> {
            try (InputStream raw = Files.newInputStream(source)) {
                read(raw, v);
            }
        };
    }

    static void read(InputStream raw, Visitor v) throws IOException {
        try (TarArchiveInputStream tar = new TarArchiveInputStream(new BufferedInputStream(raw, 1 << 16))) {
            TarArchiveEntry e;
            while ((e = tar.getNextEntry()) != null) {
                if (e.isFile()) {
                    String name = e.getName();
                    while (name.startsWith("./")) {
                        name = name.substring(2);
                    }
                    v.file(name, e.getSize(), tar);
                }
            }
        }
    }
}
