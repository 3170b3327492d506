package dev.kiln.engine.process;

import dev.kiln.KilnException;
import dev.kiln.LibcCall;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Optional;

/**
 * Reads a small file out of an untrusted image root filesystem without ever leaving it: the path is resolved one
 * component at a time without following links, and each symlink met is re-rooted at the image's root (an absolute
 * target starts again at the rootfs, {@code ..} stops at it), as if the rootfs were {@code /} — the semantics of
 * Docker's SecureJoin and of openat2's RESOLVE_IN_ROOT. The last component is opened with O_NOFOLLOW and must be a
 * regular file no larger than {@link #MAX_BYTES}.
 *
 * <p>The walk checks, then opens: it is safe for a tree nothing is modifying (an unpacked image before any sandbox
 * runs on it), which is where kiln reads /etc/passwd and /etc/group. It is not a defence against a concurrent writer.
 */
final class RootfsFile {

    static final long MAX_BYTES = 1 << 20;
    /** Linux's own limit on symlinks followed in one lookup (MAXSYMLINKS). */
    private static final int MAX_LINKS = 40;

    private RootfsFile() {
    }

    /**
     * The text of {@code path} (absolute, as the image sees it) in {@code rootfs}; empty if it does not exist in the
     * image. Throws {@link KilnException} (INVALID_ARGUMENT) for a file kiln refuses to read: not a regular file,
     * larger than 1 MiB, or a symlink loop.
     */
    static Optional<String> read(Path rootfs, String path) {
        Optional<Path> resolved = resolve(rootfs, path);
        if (resolved.isEmpty()) {
            return Optional.empty();
        }
        Path file = resolved.get();
        try {
            BasicFileAttributes attrs = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!attrs.isRegularFile()) {
                throw KilnException.invalid("the image's " + path + " is not a regular file; kiln will not read it");
            }
            if (attrs.size() > MAX_BYTES) {
                throw tooLarge(path);
            }
            try (InputStream in = Files.newInputStream(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
                byte[] bytes = in.readNBytes((int) MAX_BYTES + 1);
                if (bytes.length > MAX_BYTES) {
                    throw tooLarge(path);
                }
                return Optional.of(new String(bytes, StandardCharsets.UTF_8));
            }
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            // e.g. ELOOP: the last component was swapped for a symlink after the walk
            throw KilnException.invalid("cannot read the image's " + path + ": " + e.getMessage());
        }
    }

    /** Where {@code path} leads inside {@code rootfs}, never outside it; empty if some component is missing. */
    static Optional<Path> resolve(Path rootfs, String path) {
        Deque<String> todo = new ArrayDeque<>(components(path));
        List<String> done = new ArrayList<>();
        int links = 0;
        try {
            while (!todo.isEmpty()) {
                String name = todo.pollFirst();
                if (name.equals("..")) {
                    if (!done.isEmpty()) {
                        done.removeLast();
                    }
                    continue;
                }
                Path candidate = join(rootfs, done).resolve(name);
                // a missing entry found without an exception: a command's PATH search misses in most directories,
                // and the JDK's NOFOLLOW_LINKS look-ups throw one inside for each (issue 17)
                int missing = LibcCall.lookupNoFollow(candidate.toString());
                if (missing == LibcCall.ENOENT || missing == LibcCall.ENOTDIR) {
                    return Optional.empty();
                }
                BasicFileAttributes attrs = Files.readAttributes(candidate, BasicFileAttributes.class,
                        LinkOption.NOFOLLOW_LINKS);
                if (attrs.isSymbolicLink()) {
                    if (++links > MAX_LINKS) {
                        throw KilnException.invalid("too many symbolic links resolving " + path + " in the image");
                    }
                    String target = Files.readSymbolicLink(candidate).toString();
                    if (target.startsWith("/")) {
                        done.clear();
                    }
                    List<String> parts = components(target);
                    for (int i = parts.size() - 1; i >= 0; i--) {
                        todo.addFirst(parts.get(i));
                    }
                } else if (!todo.isEmpty() && !attrs.isDirectory()) {
                    return Optional.empty(); // a file used as a directory: ENOTDIR, i.e. not there
                } else {
                    done.add(name);
                }
            }
        } catch (NoSuchFileException | NotDirectoryException e) {
            return Optional.empty();
        } catch (IOException e) {
            throw KilnException.invalid("cannot resolve " + path + " in the image: " + e.getMessage());
        }
        return Optional.of(join(rootfs, done));
    }

    private static List<String> components(String path) {
        List<String> out = new ArrayList<>();
        for (String part : path.split("/")) {
            if (!part.isEmpty() && !part.equals(".")) {
                out.add(part);
            }
        }
        return out;
    }

    private static Path join(Path rootfs, List<String> names) {
        Path p = rootfs;
        for (String name : names) {
            p = p.resolve(name);
        }
        return p;
    }

    private static KilnException tooLarge(String path) {
        return KilnException.invalid("the image's " + path + " is larger than 1 MiB; kiln will not parse it");
    }
}
