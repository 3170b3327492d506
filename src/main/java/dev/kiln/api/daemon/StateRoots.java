package dev.kiln.api.daemon;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.nio.file.attribute.UserPrincipalNotFoundException;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * kiln's two roots, made private before kilnd writes under them, and tightened when an older kiln left them open.
 * Sandboxes write root-owned setuid files into their writable layer and images carry them; kiln 0.1 made every
 * directory 0755, so any local user could run {@code ROOT/sandboxes/ID/upper/tmp/x} as root and read {@code kiln.db}
 * (Docker's CVE-2021-41091). The directories are the wall: the sandbox's own overlay keeps setuid (see
 * {@code rootfs.Mounts}).
 *
 * <p>{@code --root} is 0700. As a second wall, should an admin loosen it, the sandbox and image trees are made 0700
 * where they are created, and every directory directly in either root is set 0700 here (an older kiln's 0755 ones
 * among them). Only root ever resolves a path under it: kilnd, kiln-shim, runc, runsc's gofer and the VMM run as
 * root, and a sandbox's own processes resolve paths from their root after pivot_root, so the modes above it never
 * apply to them (a {@code --user 1000} workload works under a 0700 root). Docker's fix of the CVE made its root 0710
 * with the group of a user-namespace-remapped root, which must traverse to its rootfs; kiln remaps no uid, so it
 * needs no search bit for anyone. (An unprivileged VMM jail, when it comes, opens its own path, not the tree.)
 *
 * <p>{@code --run-root} is 0710 root:kiln when the group {@code kiln} exists, else 0700: connecting to {@code kiln.sock}
 * (0660 root:kiln) needs search permission on its directory, listing it does not. The directories in it (runtime
 * state, image mounts) are 0700. Both roots are owned by kilnd's user (root), so no other owner can open them again.
 */
final class StateRoots {
    private static final String RUN_ROOT_WITH_GROUP = "rwx--x---";

    private StateRoots() {
    }

    static void secure(Path root, Path runRoot) {
        ownedAndPrivate(root, Optional.empty());
        ownedAndPrivate(runRoot, kilnGroup(runRoot));
    }

    private static void ownedAndPrivate(Path dir, Optional<GroupPrincipal> group) {
        try {
            Files.createDirectories(dir, OwnerOnly.DIRECTORY);
            PosixFileAttributeView view = Files.getFileAttributeView(dir, PosixFileAttributeView.class);
            UserPrincipal me = dir.getFileSystem().getUserPrincipalLookupService()
                    .lookupPrincipalByName(System.getProperty("user.name"));
            if (!view.readAttributes().owner().equals(me)) {
                view.setOwner(me);
            }
            if (group.isPresent()) {
                view.setGroup(group.get());
                view.setPermissions(PosixFilePermissions.fromString(RUN_ROOT_WITH_GROUP));
            } else {
                view.setPermissions(OwnerOnly.DIRECTORY_MODE);
            }
            for (Path inner : directoriesIn(dir)) {
                Files.setPosixFilePermissions(inner, OwnerOnly.DIRECTORY_MODE);
            }
        } catch (IOException | UnsupportedOperationException e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot make " + dir + " private to kilnd (mode "
                    + (group.isPresent() ? "0710 root:kiln" : "0700") + "): " + e.getMessage()
                    + " (kilnd needs root and a filesystem with POSIX permissions there)", e);
        }
    }

    private static List<Path> directoriesIn(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)).toList();
        }
    }

    private static Optional<GroupPrincipal> kilnGroup(Path dir) {
        try {
            return Optional.of(dir.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByGroupName("kiln"));
        } catch (UserPrincipalNotFoundException e) {
            return Optional.empty(); // no kiln group: the socket is root's alone, and so is its directory
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot look up the group kiln: " + e.getMessage(), e);
        }
    }
}
