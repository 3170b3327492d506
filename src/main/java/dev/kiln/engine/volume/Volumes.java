package dev.kiln.engine.volume;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import dev.kiln.rootfs.RootPaths;
import dev.kiln.rootfs.Trees;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * kiln's local volume driver: each volume a directory under {@code ROOT/volumes} ({@code NAME/_data}, with
 * {@code NAME/volume.json}). Names are Docker's ({@link MountSyntax#volumeName}: one path element, no {@code ..}), so
 * a volume's directory is always directly under the volumes directory. {@code ROOT/volumes} is root's alone (0700);
 * {@code _data} keeps the owner and mode of what it holds, as Docker's do.
 */
public final class Volumes {
    private static final KilnLog LOG = KilnLog.of(Volumes.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The only {@code -o} options kiln's local driver takes: none change where the data lives. */
    private static final Set<String> OPTIONS = Set.of();

    private final Path dir;

    public Volumes(Path dir) {
        this.dir = dir;
    }

    /** {@code volume create}: an existing volume of that name is answered as it is (Docker's rule). */
    public synchronized Volume create(String name, Map<String, String> labels, Map<String, String> options) {
        if (options != null) {
            for (String o : options.keySet()) {
                if (!OPTIONS.contains(o)) {
                    throw KilnException.invalid("volume option " + KilnException.quote(o) + " is not supported by "
                            + "kiln's local driver (it stores volumes as directories under kiln's root; size= needs "
                            + "a filesystem of its own)");
                }
            }
        }
        if (name == null || name.isEmpty()) {
            return createNew(Names.anonymous(), labels, false);
        }
        return find(MountSyntax.volumeName(name)).orElseGet(() -> createNew(name, labels, false));
    }

    private Volume createNew(String name, Map<String, String> labels, boolean anonymous) {
        Volume v = new Volume(name, System.currentTimeMillis(), labels, Map.of(), anonymous);
        try {
            Files.createDirectories(dir, dev.kiln.OwnerOnly.DIRECTORY);
            Path home = dir.resolve(name);
            Files.createDirectory(home, dev.kiln.OwnerOnly.DIRECTORY);
            Files.createDirectory(home.resolve("_data"));
            Files.setPosixFilePermissions(home.resolve("_data"),
                    java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
            Path tmp = home.resolve("volume.json.tmp");
            Files.write(tmp, JSON.writeValueAsBytes(v));
            Files.move(tmp, home.resolve("volume.json"), StandardCopyOption.ATOMIC_MOVE);
        } catch (FileAlreadyExistsException e) {
            return find(name).orElseThrow(() -> KilnException.conflict("volume " + name + " is being created"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return v;
    }

    public Optional<Volume> find(String name) {
        if (name == null || !MountSyntax.VOLUME_NAME.matcher(name).matches() || name.contains("..")) {
            return Optional.empty();
        }
        Path meta = dir.resolve(name).resolve("volume.json");
        try {
            return Optional.of(JSON.readValue(meta.toFile(), Volume.class));
        } catch (NoSuchFileException | java.io.FileNotFoundException e) {
            return Optional.empty();
        } catch (IOException e) {
            throw KilnException.corrupt("volume " + name + ": cannot read " + meta + ": " + e.getMessage());
        }
    }

    public Volume get(String name) {
        return find(name).orElseThrow(() -> KilnException.notFound("no such volume: " + name));
    }

    public List<Volume> list() {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> find(p.getFileName().toString())).flatMap(Optional::stream)
                    .sorted(java.util.Comparator.comparing(Volume::name)).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Where the volume's files are on the host: what is bind-mounted into a sandbox. */
    public Path data(String name) {
        return dir.resolve(MountSyntax.volumeName(name)).resolve("_data");
    }

    /** Deletes the volume; the caller has checked no sandbox uses it. */
    public synchronized void remove(String name) {
        get(name);
        Path home = dir.resolve(name);
        try {
            Files.deleteIfExists(home.resolve("volume.json")); // first: a half-deleted volume is not listed
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Trees.delete(home);
    }

    /** Bytes the volume's files take (its size in {@code system df}); -1 if it cannot be read. */
    public long size(String name) {
        long[] total = {0};
        try {
            Files.walkFileTree(data(name), new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes a) {
                    total[0] += a.size();
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFileFailed(Path file, IOException e) {
                    return FileVisitResult.CONTINUE;
                }
            });
            return total[0];
        } catch (IOException e) {
            return -1;
        }
    }

    /**
     * Completes a sandbox's mounts when it is created, on kilnd's host: a bind's source resolved once to its real
     * path (a missing one made as a directory for {@code -v}, refused for {@code --mount}); each volume found or made
     * (anonymous ones named), the image's {@code VOLUME}s not covered by a mount given anonymous volumes, and a new
     * empty volume filled with what the image has at its target (Docker's copy-up; not with {@code nocopy}).
     *
     * @param imageRootfs the image's unpacked tree, read for the copy-up (never followed out of: {@link RootPaths})
     */
    public Mounts prepare(Mounts asked, Map<String, Object> imageVolumes, Path imageRootfs) {
        List<MountSpec> out = new ArrayList<>();
        List<String> made = new ArrayList<>();
        try {
            Set<String> targets = new java.util.HashSet<>();
            for (MountSpec m : Mounts.of(asked).list()) {
                targets.add(m.target());
            }
            List<MountSpec> all = new ArrayList<>(Mounts.of(asked).list());
            if (imageVolumes != null) {
                for (String path : imageVolumes.keySet()) {
                    String target = MountSyntax.target(path, "the image's VOLUME " + path);
                    if (targets.add(target)) {
                        all.add(new MountSpec(MountSpec.VOLUME, null, target, false, null, "", "image", false, false,
                                true, null, null));
                    }
                }
            }
            for (MountSpec m : all) {
                if (m.bind()) {
                    out.add(m.withSource(bindSource(m), false));
                } else if (m.volume()) {
                    boolean isNew;
                    Volume v;
                    synchronized (this) {
                        Optional<Volume> existing = m.source() == null ? Optional.empty() : find(m.source());
                        isNew = existing.isEmpty();
                        v = existing.orElseGet(() -> createNew(m.source() == null ? Names.anonymous() : m.source(),
                                m.labels(), m.source() == null));
                    }
                    if (isNew) {
                        made.add(v.name());
                    }
                    if (!m.noCopy() && isEmpty(data(v.name()))) {
                        copyUp(imageRootfs, m.target(), data(v.name()));
                    }
                    out.add(m.withSource(v.name(), v.anonymous()));
                } else {
                    out.add(m);
                }
            }
        } catch (RuntimeException e) {
            made.forEach(this::removeQuietly);
            throw e;
        }
        return out.isEmpty() ? null : new Mounts(out);
    }

    private static String bindSource(MountSpec m) {
        Path source = Path.of(m.source());
        if (!Files.exists(source)) {
            if (!m.createSource()) {
                throw KilnException.invalid("bind source path does not exist: " + m.source()
                        + " (create it first; -v would make it as a directory)");
            }
            try {
                Files.createDirectories(source);
            } catch (IOException e) {
                throw KilnException.invalid("cannot create bind source " + m.source() + ": " + e.getMessage());
            }
        }
        try {
            // resolved once, here: the runtime binds this real path, whatever the given one points at later
            return source.toRealPath().toString();
        } catch (IOException e) {
            throw KilnException.invalid("cannot resolve bind source " + m.source() + ": " + e.getMessage());
        }
    }

    private static boolean isEmpty(Path d) {
        try (Stream<Path> s = Files.list(d)) {
            return s.findAny().isEmpty();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Docker's copy-up: what the image has at {@code target} (resolved inside its tree, symlinks followed only
     * inside it) is copied into the empty volume with owners, modes and times; symlinks are copied as they are,
     * never followed.
     */
    static void copyUp(Path imageRootfs, String target, Path data) {
        if (imageRootfs == null || !Files.isDirectory(imageRootfs)) {
            return;
        }
        RootPaths.Resolved r;
        try {
            r = RootPaths.follow(imageRootfs, RootPaths.resolve(imageRootfs, target));
        } catch (KilnException e) {
            return; // not in the image (or not a directory on the way): an empty volume, as Docker's
        }
        BasicFileAttributes top = r.attributes();
        if (top == null || !top.isDirectory()) {
            return;
        }
        Path from = r.host();
        try {
            copyOwnerAndMode(from, data);
            Files.walkFileTree(from, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes a) throws IOException {
                    if (!d.equals(from)) {
                        Path to = data.resolve(from.relativize(d).toString());
                        Files.createDirectory(to);
                        copyOwnerAndMode(d, to);
                    }
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                    Path to = data.resolve(from.relativize(f).toString());
                    if (a.isRegularFile() || a.isSymbolicLink()) {
                        Files.copy(f, to, LinkOption.NOFOLLOW_LINKS, StandardCopyOption.COPY_ATTRIBUTES);
                    } // devices, fifos and sockets in an image's VOLUME directory: not copied
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("copying the image's " + target + " into a new volume", e);
        }
    }

    private static void copyOwnerAndMode(Path from, Path to) throws IOException {
        PosixFileAttributes a = Files.readAttributes(from, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        PosixFileAttributeView v = Files.getFileAttributeView(to, PosixFileAttributeView.class,
                LinkOption.NOFOLLOW_LINKS);
        v.setOwner(a.owner());
        v.setGroup(a.group());
        v.setPermissions(a.permissions());
    }

    public void removeQuietly(String name) {
        try {
            remove(name);
        } catch (RuntimeException e) {
            LOG.warn("cannot remove volume " + name + ": " + e.getMessage());
        }
    }

    /** Docker's names for anonymous volumes: 64 hex digits. */
    static final class Names {
        private Names() {
        }

        static String anonymous() {
            byte[] b = new byte[32];
            new java.security.SecureRandom().nextBytes(b);
            return java.util.HexFormat.of().formatHex(b);
        }
    }
}
