package dev.kiln.isolation.vm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * A file as it was when looked at, for what kilnd remembers of a file it read (a kernel's answer, an empty disk's
 * extents): a rewrite changes its time or size, a replacement its inode.
 */
record FileIdentity(long size, long mtime, Object inode) {
    static FileIdentity of(Path file, LinkOption... options) throws IOException {
        return of(Files.readAttributes(file, BasicFileAttributes.class, options));
    }

    static FileIdentity of(BasicFileAttributes a) {
        return new FileIdentity(a.size(), a.lastModifiedTime().toMillis(), a.fileKey());
    }
}
