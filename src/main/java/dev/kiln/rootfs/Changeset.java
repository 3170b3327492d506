package dev.kiln.rootfs;

import dev.kiln.image.archive.EntryName;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarConstants;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static java.nio.file.LinkOption.NOFOLLOW_LINKS;
import static java.nio.file.StandardOpenOption.CREATE_NEW;
import static java.nio.file.StandardOpenOption.WRITE;

/**
 * One layer's entries applied to a {@link RootTree}, in archive order: the OCI changeset rules (whiteouts, opaque
 * directories, a non-directory replaces anything, a directory merges into a directory) and file metadata. Directory
 * modes and times are set in {@link #finish()}, after their children are written.
 */
final class Changeset {
    private static final String WHITEOUT = ".wh.";
    private static final String OPAQUE = ".wh..wh..opq";
    private static final OpenOption[] NEW_FILE = {CREATE_NEW, WRITE, NOFOLLOW_LINKS};
    private static final boolean ROOT = new com.sun.security.auth.module.UnixSystem().getUid() == 0;

    /** An entry the layer must not contain; the message completes "entry NAME …". */
    static final class BadEntry extends RuntimeException {
        BadEntry(String reason) {
            super(reason, null, false, false);
        }
    }

    /** An entry a client's archive may not contain here (docker cp): the client's mistake, not corruption. */
    static final class Refused extends RuntimeException {
        Refused(String reason) {
            super(reason, null, false, false);
        }
    }

    /**
     * Where a client's archive goes ({@code docker cp}): the clean relative name of the destination directory, which
     * every entry is relative to, and how to write. Null for an image layer, which is relative to the root.
     */
    record Destination(String into, LayerApplier.Extraction how) {
    }

    /** The blob could not be read (truncated, corrupt, or over the size limit). */
    static final class UnreadableBlob extends RuntimeException {
        UnreadableBlob(IOException cause) {
            super(cause);
        }
    }

    private final RootTree tree;
    private final boolean createDevices;
    private final byte[] buffer = new byte[256 * 1024];
    private final Map<Path, TarArchiveEntry> directories = new LinkedHashMap<>();
    private final Destination destination;

    Changeset(RootTree tree, boolean createDevices, Destination destination) {
        this.tree = tree;
        this.createDevices = createDevices;
        this.destination = destination;
    }

    void apply(TarArchiveEntry entry, InputStream content) throws IOException {
        String name = inRoot(entry.getName());
        if (destination != null && name.equals(destination.into())) {
            if (!entry.isDirectory()) {
                throw new Refused("names the destination directory itself but is not a directory");
            }
            return; // the destination exists and keeps its own mode, owner and times (a "./" entry names it)
        }
        int slash = name.lastIndexOf('/');
        String parent = slash < 0 ? "" : name.substring(0, slash);
        String base = name.substring(slash + 1);
        if (destination == null && base.startsWith(WHITEOUT)) {
            whiteout(parent, base);
            return;
        }
        if (name.isEmpty()) {
            if (!entry.isDirectory()) {
                throw new BadEntry("names the root but is not a directory");
            }
            directories.put(tree.root(), entry);
            return;
        }
        Path target = tree.directory(parent, true).resolve(base);
        if (destination != null && destination.how().noOverwriteDirNonDir()) {
            BasicFileAttributes old = RootTree.lstat(target);
            if (old != null && old.isDirectory() != entry.isDirectory()) {
                throw new Refused(old.isDirectory() ? "would replace directory \"/" + name + "\" with a non-directory"
                        : "would replace non-directory \"/" + name + "\" with a directory");
            }
        }
        if (entry.isDirectory()) {
            directory(name, target, entry);
        } else {
            switch (entry.getLinkFlag()) {
                case TarConstants.LF_NORMAL, TarConstants.LF_OLDNORM, TarConstants.LF_CONTIG,
                     TarConstants.LF_GNUTYPE_SPARSE -> file(target, entry, content);
                case TarConstants.LF_SYMLINK -> symlink(target, entry);
                case TarConstants.LF_LINK -> hardlink(target, entry);
                case TarConstants.LF_FIFO -> node(target, entry, "p");
                case TarConstants.LF_CHR, TarConstants.LF_BLK -> {
                    if (!createDevices || !ROOT) {
                        return;
                    }
                    node(target, entry, entry.getLinkFlag() == TarConstants.LF_CHR ? "c" : "b");
                }
                default -> {
                    return; // volume labels and other archive-level records: nothing to create
                }
            }
        }
        tree.markWritten(target);
    }

    /** Sets the modes and times of this layer's directories, unless a later entry replaced them. */
    void finish() throws IOException {
        Set<Path> checked = new HashSet<>();
        for (var dir : directories.entrySet()) {
            Path path = dir.getKey();
            if (tree.isRealDirectory(path, checked)) {
                Files.setAttribute(path, "unix:mode", mode(dir.getValue()));
                times(path, dir.getValue());
            }
        }
    }

    private void whiteout(String parent, String base) throws IOException {
        if (base.equals(OPAQUE)) {
            Path dir = tree.directory(parent, false);
            if (dir != null) {
                tree.removeLowerChildren(dir);
            }
            return;
        }
        if (base.startsWith(WHITEOUT + WHITEOUT)) {
            return; // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): nothing to apply
        }
        String hidden = base.substring(WHITEOUT.length());
        if (hidden.isEmpty() || hidden.equals("..")) {
            throw new BadEntry("is a whiteout of nothing or of its parent");
        }
        Path dir = tree.directory(parent, false);
        if (dir != null) {
            tree.removeLower(dir.resolve(hidden));
        }
    }

    private void directory(String name, Path target, TarArchiveEntry entry) throws IOException {
        try {
            Files.createDirectory(target);
        } catch (FileAlreadyExistsException e) {
            if (!RootTree.isDirectory(RootTree.lstat(target))) { // a directory merges; anything else is replaced
                tree.remove(target);
                Files.createDirectory(target);
            }
        }
        tree.knownDirectory(name, target);
        owner(target, entry);
        xattrs(target, entry);
        directories.put(target, entry);
    }

    private void file(Path target, TarArchiveEntry entry, InputStream content) throws IOException {
        try (FileChannel out = create(target)) {
            for (int n; (n = read(content)) > 0; ) {
                ByteBuffer chunk = ByteBuffer.wrap(buffer, 0, n);
                while (chunk.hasRemaining()) {
                    out.write(chunk);
                }
            }
        }
        metadata(target, entry);
        xattrs(target, entry);
    }

    /** O_CREAT|O_EXCL|O_NOFOLLOW: never writes through an old entry or a symlink, whatever was there is replaced. */
    private FileChannel create(Path target) throws IOException {
        try {
            return FileChannel.open(target, NEW_FILE);
        } catch (FileAlreadyExistsException e) {
            tree.remove(target);
            return FileChannel.open(target, NEW_FILE);
        }
    }

    private void symlink(Path target, TarArchiveEntry entry) throws IOException {
        Path link = Path.of(entry.getLinkName()); // any target is legal: it is only resolved inside the root
        try {
            Files.createSymbolicLink(target, link);
        } catch (FileAlreadyExistsException e) {
            tree.remove(target);
            Files.createSymbolicLink(target, link);
        }
        owner(target, entry);
        times(target, entry);
    }

    /** A hard link to an earlier path inside the root; it shares that inode's metadata, so none is applied. */
    private void hardlink(Path target, TarArchiveEntry entry) throws IOException {
        String name = clean(entry.getLinkName());
        if (name == null || name.isEmpty()) {
            if (destination != null) {
                throw new Refused("links to \"" + entry.getLinkName() + "\", which is outside the destination");
            }
            throw new BadEntry("links to \"" + entry.getLinkName() + "\", which is outside the root");
        }
        name = inDestination(name);
        int slash = name.lastIndexOf('/');
        Path dir = tree.directory(slash < 0 ? "" : name.substring(0, slash), false);
        Path existing = dir == null ? null : dir.resolve(name.substring(slash + 1));
        BasicFileAttributes attrs = existing == null ? null : RootTree.lstat(existing);
        if (attrs == null || attrs.isDirectory()) {
            throw new BadEntry("links to \"" + entry.getLinkName() + "\", which is "
                    + (attrs == null ? "not in the root" : "a directory"));
        }
        if (existing.equals(target)) {
            return;
        }
        try {
            Files.createLink(target, existing); // link(2) does not follow a symlink: it links the symlink itself
        } catch (FileAlreadyExistsException e) {
            tree.remove(target);
            Files.createLink(target, existing);
        }
    }

    /**
     * A FIFO or device node, made with mknod(1) as Java has no mknod; its time is set with touch(1), since Java opens
     * a file to set its times and opening a FIFO blocks. Both are rare in images.
     */
    private void node(Path target, TarArchiveEntry entry, String type) throws IOException {
        tree.remove(target);
        List<String> mknod = new ArrayList<>(List.of("mknod", "-m", "0600", target.toString(), type));
        if (!type.equals("p")) {
            mknod.add(Integer.toString(entry.getDevMajor()));
            mknod.add(Integer.toString(entry.getDevMinor()));
        }
        run(mknod);
        owner(target, entry);
        Files.setAttribute(target, "unix:mode", mode(entry));
        Instant mtime = entry.getLastModifiedTime().toInstant();
        run(List.of("touch", "-h", "-d", "@" + mtime.getEpochSecond() + "." + String.format("%09d", mtime.getNano()),
                target.toString()));
    }

    private static void run(List<String> command) throws IOException {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        try {
            String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (!process.waitFor(30, TimeUnit.SECONDS) || process.exitValue() != 0) {
                throw new IOException(command.getFirst() + " failed: " + output);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while running " + command.getFirst(), e);
        }
    }

    /**
     * An entry's name as a clean name relative to the root: a layer's as it is, a client's archive's below its
     * destination. Climbing out with {@code ..} is hostile in a layer and refused in a client's archive.
     */
    private String inRoot(String entryName) {
        String name = clean(entryName);
        if (name == null) {
            if (destination != null) {
                throw new Refused("climbs out of the destination directory with \"..\"");
            }
            throw new BadEntry("escapes the root");
        }
        return inDestination(name);
    }

    private String inDestination(String name) {
        if (destination == null || destination.into().isEmpty()) {
            return name;
        }
        return name.isEmpty() ? destination.into() : destination.into() + "/" + name;
    }

    /** Owner, then mode (chown clears setuid), then times. {@code path} was just created and is no symlink. */
    private void metadata(Path path, TarArchiveEntry entry) throws IOException {
        owner(path, entry);
        Files.setAttribute(path, "unix:mode", mode(entry));
        times(path, entry);
    }

    /** The permission bits to set: a layer's all of them; a client's archive without setuid/setgid unless asked. */
    private int mode(TarArchiveEntry entry) {
        boolean setId = destination == null || destination.how().keepSetId();
        return entry.getMode() & (setId ? 07777 : 01777);
    }

    /**
     * Numeric owner, as in the archive; only root may give files away, so unprivileged runs keep their own. A client's
     * archive is owned by root unless it asked to keep its owners (docker cp -a), as Docker does.
     */
    private void owner(Path path, TarArchiveEntry entry) throws IOException {
        if (ROOT) {
            boolean keep = destination == null || destination.how().keepOwners();
            Files.setAttribute(path, "unix:uid", keep ? (int) entry.getLongUserId() : 0, NOFOLLOW_LINKS);
            Files.setAttribute(path, "unix:gid", keep ? (int) entry.getLongGroupId() : 0, NOFOLLOW_LINKS);
        }
    }

    private static void times(Path path, TarArchiveEntry entry) throws IOException {
        FileTime mtime = entry.getLastModifiedTime();
        Files.getFileAttributeView(path, BasicFileAttributeView.class, NOFOLLOW_LINKS).setTimes(mtime, mtime, null);
    }

    /**
     * {@code user.*} xattrs from PAX {@code SCHILY.xattr.*}, on files and directories only (opening a FIFO would
     * block); other namespaces are skipped (see LayerApplier).
     */
    private static void xattrs(Path path, TarArchiveEntry entry) {
        for (var header : entry.getExtraPaxHeaders().entrySet()) {
            if (header.getKey().startsWith("SCHILY.xattr.user.")) {
                try {
                    Files.getFileAttributeView(path, UserDefinedFileAttributeView.class)
                            .write(header.getKey().substring("SCHILY.xattr.user.".length()),
                                    ByteBuffer.wrap(header.getValue().getBytes(StandardCharsets.UTF_8)));
                } catch (IOException | UnsupportedOperationException e) {
                    // the filesystem has no user xattrs: the image still runs without them
                }
            }
        }
    }

    private int read(InputStream content) {
        try {
            return content.read(buffer);
        } catch (IOException e) {
            throw new UnreadableBlob(e);
        }
    }

    /**
     * The entry name as a clean relative path ({@code ""} is the root), or null when {@code ..} climbs out of the
     * root. A leading {@code /} is dropped, as Docker does: an absolute name means "from the root".
     */
    static String clean(String name) {
        String problem = EntryName.problem(name);
        if (problem != null) {
            throw new BadEntry(problem);
        }
        ArrayDeque<String> parts = new ArrayDeque<>();
        for (String part : name.split("/")) {
            if (part.equals("..")) {
                if (parts.pollLast() == null) {
                    return null;
                }
            } else if (!part.isEmpty() && !part.equals(".")) {
                parts.addLast(part);
            }
        }
        return String.join("/", parts);
    }
}
