package dev.kiln.build;

import dev.kiln.KilnException;
import dev.kiln.engine.process.ImageProcess;
import dev.kiln.engine.process.ImageUser;
import dev.kiln.rootfs.RootPaths;
import dev.kiln.rootfs.TreeArchive;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static java.nio.file.LinkOption.NOFOLLOW_LINKS;

/**
 * The files of one COPY or ADD, found and hashed before the step runs (the hash is part of its cache key), then
 * written into the step's tree with Docker's semantics:
 *
 * <ul>
 * <li>sources are paths or Go {@code filepath.Match} globs inside the source root (the context, or a stage's or an
 * image's tree for {@code --from}); every path is resolved inside that root ({@link RootPaths}): a symlink that
 * points out of it resolves against the root, as Docker's FollowSymlinkInScope does, so nothing outside is read; a
 * path that climbs out with {@code ..} is refused, as the classic builder refuses it;
 * <li>a directory's contents are copied, not the directory; a named symlink is followed, symlinks inside a copied
 * directory stay links;
 * <li>several sources or a wildcard need a destination ending in {@code /}; a destination ending in {@code /} or an
 * existing directory receives files under their own names; a missing destination directory is made 0755;
 * <li>owner 0:0 unless {@code --chown} (a name is looked up in the image's /etc/passwd and /etc/group; a user alone
 * gives the same number as the group), modes as in the source unless {@code --chmod};
 * <li>ADD extracts a local tar archive (plain, gzip, bzip2) into the destination, and refuses URLs.
 * </ul>
 */
final class CopySources {

    /** A source as found: where it is on the host (followed), and the name it had in the instruction. */
    record Source(Path host, String name, boolean directory, boolean archive, byte[] inline) {
    }

    private final List<Source> sources;
    private final String dest;
    private final boolean destIsDir;
    private final String chown;
    private final Integer chmod;
    private final String hash;

    private CopySources(List<Source> sources, String dest, boolean destIsDir, String chown, Integer chmod,
                        String hash) {
        this.sources = sources;
        this.dest = dest;
        this.destIsDir = destIsDir;
        this.chown = chown;
        this.chmod = chmod;
        this.hash = hash;
    }

    /**
     * Finds the sources of one COPY/ADD. {@code inline} are the instruction's here-documents by name; {@code dest}
     * is absolute (the WORKDIR already applied), as written otherwise (its trailing {@code /} matters).
     */
    static CopySources find(String keyword, Path root, boolean fromContext, List<String> patterns,
                            java.util.Map<String, byte[]> inline, String dest, String chown, String chmod) {
        boolean add = keyword.equals("ADD");
        boolean wildcard = false;
        List<Source> found = new ArrayList<>();
        for (String pattern : patterns) {
            if (inline.containsKey(pattern)) {
                found.add(new Source(null, pattern, false, false, inline.get(pattern)));
                continue;
            }
            if (pattern.matches("(?i)^(https?|git)://.*") || pattern.matches("^git@.*")) {
                throw KilnException.invalid(keyword + " " + pattern + ": sources from URLs and git are not supported "
                        + "by kiln's builder (download in a RUN step, or put the file in the build context)");
            }
            String clean = cleanInRoot(pattern, fromContext);
            boolean glob = clean.matches(".*[*?\\[].*");
            wildcard |= glob;
            List<Path> matches = glob ? glob(root, clean) : List.of(single(root, clean, pattern, fromContext));
            if (matches.isEmpty()) {
                throw KilnException.invalid(keyword + " failed: no source files were specified (nothing matches "
                        + pattern + ")");
            }
            for (Path m : matches) {
                BasicFileAttributes a = lstat(m);
                boolean dir = a.isDirectory();
                found.add(new Source(m, m.getFileName() == null ? "" : m.getFileName().toString(), dir,
                        add && !dir && isArchive(m), null));
            }
        }
        if ((found.size() > 1 || wildcard) && !dest.endsWith("/")) {
            throw KilnException.invalid("When using " + keyword + " with more than one source file, the destination "
                    + "must be a directory and end with a /");
        }
        Integer mode = null;
        if (chmod != null) {
            if (!chmod.matches("[0-7]{3,4}")) {
                throw KilnException.invalid(keyword + " --chmod=" + chmod + ": only octal modes are supported");
            }
            mode = Integer.parseInt(chmod, 8);
        }
        return new CopySources(List.copyOf(found), dest, dest.endsWith("/"), chown, mode, hash(found));
    }

    /** The content hash of the sources (names, types, modes, link targets, bytes): a changed file changes it. */
    String hash() {
        return hash;
    }

    /** Docker's {@code file:}/{@code dir:}/{@code multi:} description of the sources for history. */
    String describe() {
        String kind = sources.size() > 1 ? "multi" : sources.getFirst().directory() ? "dir" : "file";
        return kind + ":" + hash.substring(0, 64) + " in " + dest + " ";
    }

    /** Writes the sources into {@code tree}, the step's overlay over the parent image. */
    void apply(StepTree tree) {
        int[] owner = owner(tree.root());
        String destRel = dest.replaceAll("^/+", "").replaceAll("/+$", "");
        boolean intoDir = destIsDir || sources.size() > 1 || isDirectory(tree.root(), dest)
                || sources.stream().anyMatch(s -> s.directory() || s.archive());
        for (Source s : sources) {
            try {
                if (s.archive()) {
                    makeDirectory(tree, destRel, owner);
                    try (InputStream in = decompressed(s.host())) {
                        tree.extract(in, resolvedDir(tree, destRel));
                    }
                    continue;
                }
                String target = s.directory() ? destRel : intoDir ? join(destRel, s.name()) : destRel;
                boolean targetExists = exists(tree.root(), target);
                piped(tree, out -> {
                    if (s.inline() != null) {
                        inline(out, target, s.inline(), owner);
                    } else {
                        TreeArchive.tar(s.host(), target.isEmpty() ? "." : target, out, e -> edit(e, target, owner,
                                s.directory() && targetExists));
                    }
                });
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    private interface TarWriter {
        void write(OutputStream out) throws IOException;
    }

    /**
     * Extracts what {@code writer} writes straight into the step's tree through a pipe (a virtual thread writes, this
     * one extracts): the sources are read once and written once, with no archive on disk between.
     */
    private static void piped(StepTree tree, TarWriter writer) throws IOException {
        java.io.PipedInputStream in = new java.io.PipedInputStream(1 << 20);
        java.io.PipedOutputStream pipe = new java.io.PipedOutputStream(in);
        IOException[] failed = new IOException[1];
        Thread t = Thread.ofVirtual().start(() -> {
            try (pipe) {
                writer.write(pipe);
            } catch (IOException e) {
                failed[0] = e;
            }
        });
        try (in) {
            tree.extract(in, ""); // reads to the end of the stream, so the writer is done when this returns
        } finally {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (failed[0] != null) {
            throw failed[0];
        }
    }

    private boolean edit(TarArchiveEntry e, String target, int[] owner, boolean skipTop) {
        String name = e.getName().replaceAll("/+$", "");
        boolean top = name.equals(target) || name.equals(".") && target.isEmpty();
        if (top && e.isDirectory()) {
            if (skipTop) {
                return false; // an existing destination keeps its own owner, mode and times
            }
            e.setMode(040755);
        }
        e.setIds(owner[0], owner[1]);
        e.setUserName("");
        e.setGroupName("");
        if (chmod != null && !e.isSymbolicLink()) {
            e.setMode(e.getMode() & ~07777 | chmod);
        }
        return true;
    }

    private void inline(OutputStream out, String target, byte[] content, int[] owner) throws IOException {
        var tar = new org.apache.commons.compress.archivers.tar.TarArchiveOutputStream(out);
        tar.setLongFileMode(org.apache.commons.compress.archivers.tar.TarArchiveOutputStream.LONGFILE_POSIX);
        TarArchiveEntry e = new TarArchiveEntry(target);
        e.setSize(content.length);
        e.setMode(0100644);
        e.setModTime(System.currentTimeMillis());
        edit(e, "\0", owner, false);
        tar.putArchiveEntry(e);
        tar.write(content);
        tar.closeArchiveEntry();
        tar.finish();
    }

    /** The destination directory, made (0755, the copy's owner) where missing. */
    private static void makeDirectory(StepTree tree, String destRel, int[] owner) throws IOException {
        if (destRel.isEmpty() || isDirectory(tree.root(), "/" + destRel)) {
            return;
        }
        Path tar = tree.scratch("dest-dir.tar");
        try (OutputStream out = Files.newOutputStream(tar)) {
            var t = new org.apache.commons.compress.archivers.tar.TarArchiveOutputStream(out);
            t.setLongFileMode(org.apache.commons.compress.archivers.tar.TarArchiveOutputStream.LONGFILE_POSIX);
            TarArchiveEntry e = new TarArchiveEntry(destRel + "/");
            e.setMode(040755);
            e.setIds(owner[0], owner[1]);
            e.setModTime(System.currentTimeMillis());
            t.putArchiveEntry(e);
            t.closeArchiveEntry();
            t.finish();
        }
        tree.extract(tar, "");
    }

    /** The destination directory as a clean relative path inside the root, its symlinks resolved there. */
    private static String resolvedDir(StepTree tree, String destRel) {
        if (destRel.isEmpty()) {
            return "";
        }
        RootPaths.Resolved r = RootPaths.follow(tree.root(), RootPaths.resolve(tree.root(), destRel));
        return tree.root().relativize(r.host()).toString();
    }

    private int[] owner(Path root) {
        if (chown == null || chown.isEmpty()) {
            return new int[] {0, 0};
        }
        int colon = chown.indexOf(':');
        String user = colon < 0 ? chown : chown.substring(0, colon);
        String group = colon < 0 ? null : chown.substring(colon + 1);
        int uid = user.matches("\\d+") ? Integer.parseInt(user) : ImageProcess.resolveUser(root, user).uid();
        int gid;
        if (group == null) {
            gid = uid;
        } else if (group.matches("\\d+")) {
            gid = Integer.parseInt(group);
        } else {
            gid = ImageProcess.resolveUser(root, "0:" + group).gid();
        }
        return new int[] {uid, gid};
    }

    /**
     * A source path cleaned inside its root: a leading {@code /} is the root; {@code ..} that would climb out of the
     * context is refused, as the classic builder refuses "a path outside the build context".
     */
    private static String cleanInRoot(String pattern, boolean fromContext) {
        List<String> parts = new ArrayList<>();
        for (String p : pattern.split("/")) {
            if (p.isEmpty() || p.equals(".")) {
                continue;
            }
            if (p.equals("..")) {
                if (parts.isEmpty()) {
                    if (fromContext) {
                        throw KilnException.invalid("forbidden path outside the build context: " + pattern);
                    }
                    continue;
                }
                parts.removeLast();
                continue;
            }
            parts.add(p);
        }
        return String.join("/", parts);
    }

    private static Path single(Path root, String clean, String pattern, boolean fromContext) {
        try {
            RootPaths.Resolved r = RootPaths.follow(root, RootPaths.resolve(root, clean));
            if (!r.exists()) {
                throw notFound(pattern, fromContext);
            }
            return r.host();
        } catch (KilnException e) {
            if (e.kind() == KilnException.Kind.NOT_FOUND) {
                throw notFound(pattern, fromContext);
            }
            throw e;
        }
    }

    private static KilnException notFound(String pattern, boolean fromContext) {
        return KilnException.invalid("file not found" + (fromContext ? " in build context or excluded by "
                + ".dockerignore" : "") + ": stat " + pattern + ": file does not exist");
    }

    /** Paths matching a glob, element by element, each directory listed inside the root. */
    private static List<Path> glob(Path root, String clean) {
        List<Path> current = List.of(root);
        for (String part : clean.split("/")) {
            List<Path> next = new ArrayList<>();
            boolean wild = part.matches(".*[*?\\[].*");
            Pattern p = wild ? Pattern.compile(globRegex(part)) : null;
            for (Path dir : current) {
                Path real = dir.equals(root) ? root : RootPaths.follow(root, RootPaths.resolve(root,
                        root.relativize(dir).toString())).host();
                if (!Files.isDirectory(real, NOFOLLOW_LINKS)) {
                    continue;
                }
                if (!wild) {
                    Path child = real.resolve(part);
                    if (lstatOrNull(child) != null) {
                        next.add(child);
                    }
                    continue;
                }
                try (Stream<Path> list = Files.list(real)) {
                    list.filter(c -> p.matcher(c.getFileName().toString()).matches()).sorted().forEach(next::add);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
            current = next;
        }
        List<Path> out = new ArrayList<>();
        for (Path m : current) {
            out.add(RootPaths.follow(root, RootPaths.resolve(root, root.relativize(m).toString())).host());
        }
        return out;
    }

    /** Go's filepath.Match for one element: {@code *}, {@code ?}, {@code [...]}, {@code \} escapes. */
    static String globRegex(String part) {
        StringBuilder re = new StringBuilder();
        for (int i = 0; i < part.length(); i++) {
            char c = part.charAt(i);
            switch (c) {
                case '*' -> re.append("[^/]*");
                case '?' -> re.append("[^/]");
                case '\\' -> re.append(i + 1 < part.length() ? Pattern.quote(String.valueOf(part.charAt(++i))) : "\\\\");
                case '[' -> {
                    int end = part.indexOf(']', i + 1);
                    if (end < 0) {
                        throw KilnException.invalid("syntax error in pattern " + part);
                    }
                    String cls = part.substring(i + 1, end);
                    re.append('[').append(cls.startsWith("^") ? "^" + cls.substring(1).replace("\\", "\\\\")
                            : cls.replace("\\", "\\\\")).append(']');
                    i = end;
                }
                default -> re.append(Pattern.quote(String.valueOf(c)));
            }
        }
        return re.toString();
    }

    private static String hash(List<Source> sources) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (Source s : sources) {
                md.update(("source " + s.name() + "\n").getBytes(StandardCharsets.UTF_8));
                if (s.inline() != null) {
                    md.update(s.inline());
                    continue;
                }
                List<Path> all;
                try (Stream<Path> walk = Files.walk(s.host())) {
                    all = walk.sorted().toList();
                }
                for (Path p : all) {
                    BasicFileAttributes a = lstat(p);
                    int mode = (Integer) Files.getAttribute(p, "unix:mode", NOFOLLOW_LINKS);
                    md.update((s.host().relativize(p) + " " + Integer.toOctalString(mode) + " "
                            + (a.isSymbolicLink() ? "-> " + Files.readSymbolicLink(p) : a.size()) + "\n")
                            .getBytes(StandardCharsets.UTF_8));
                    if (a.isRegularFile()) {
                        try (InputStream in = Files.newInputStream(p, NOFOLLOW_LINKS)) {
                            byte[] buf = new byte[1 << 16];
                            for (int n; (n = in.read(buf)) > 0; ) {
                                md.update(buf, 0, n);
                            }
                        }
                    }
                }
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static boolean isArchive(Path file) {
        try (InputStream in = Files.newInputStream(file, NOFOLLOW_LINKS)) {
            byte[] head = in.readNBytes(262);
            if (head.length >= 2 && (head[0] & 0xff) == 0x1f && (head[1] & 0xff) == 0x8b) {
                return true;
            }
            if (head.length >= 3 && head[0] == 'B' && head[1] == 'Z' && head[2] == 'h') {
                return true;
            }
            return head.length >= 262 && new String(head, 257, 5, StandardCharsets.US_ASCII).equals("ustar");
        } catch (IOException e) {
            return false;
        }
    }

    private static InputStream decompressed(Path file) throws IOException {
        BufferedInputStream in = new BufferedInputStream(Files.newInputStream(file, NOFOLLOW_LINKS), 1 << 16);
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

    private static boolean isDirectory(Path root, String path) {
        try {
            RootPaths.Resolved r = RootPaths.follow(root, RootPaths.resolve(root, path));
            BasicFileAttributes a = r.attributes();
            return a != null && a.isDirectory();
        } catch (KilnException e) {
            return false;
        }
    }

    private static boolean exists(Path root, String rel) {
        try {
            return RootPaths.resolve(root, rel).exists();
        } catch (KilnException e) {
            return false;
        }
    }

    private static String join(String dir, String name) {
        return dir.isEmpty() ? name : dir + "/" + name;
    }

    private static BasicFileAttributes lstat(Path p) {
        try {
            return Files.readAttributes(p, BasicFileAttributes.class, NOFOLLOW_LINKS);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static BasicFileAttributes lstatOrNull(Path p) {
        try {
            return Files.readAttributes(p, BasicFileAttributes.class, NOFOLLOW_LINKS);
        } catch (IOException e) {
            return null;
        }
    }
}
