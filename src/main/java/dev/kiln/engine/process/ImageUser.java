package dev.kiln.engine.process;

import dev.kiln.KilnException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * A {@code docker run -u} user specification ({@code name}, {@code uid}, {@code name:group}, {@code uid:gid}, or empty
 * for root) resolved against the image's /etc/passwd and /etc/group, with Docker's rules (moby/sys/user
 * GetExecUser plus the daemon's getUser): a numeric uid absent from passwd is fine (gid 0, home /); a name absent is
 * an error; supplementary groups come from /etc/group membership unless a group was given explicitly; the primary
 * gid is always the first additional gid.
 */
public record ImageUser(int uid, int gid, List<Integer> additionalGids, String home) {

    private static final long MAX_ID = Integer.MAX_VALUE;

    public ImageUser {
        additionalGids = List.copyOf(additionalGids);
    }

    /**
     * Resolves {@code spec} in the image rooted at {@code rootfs}, reading its files with {@link RootfsFile}. Pass an
     * image tree nothing is writing to (the unpacked image), never a running sandbox's root: the safe walk is not
     * proof against a concurrent writer swapping path components for symlinks.
     */
    public static ImageUser resolve(Path rootfs, String spec) {
        return resolve(spec, RootfsFile.read(rootfs, "/etc/passwd"), RootfsFile.read(rootfs, "/etc/group"));
    }

    static ImageUser resolve(String spec, Optional<String> passwd, Optional<String> group) {
        String userArg = spec == null ? "" : spec;
        String groupArg = "";
        int colon = userArg.indexOf(':');
        if (colon >= 0) {
            groupArg = userArg.substring(colon + 1);
            userArg = userArg.substring(0, colon);
        }

        int uid = 0;
        int gid = 0;
        String home = "/";
        String name = "";
        Optional<String[]> entry = Optional.empty();
        for (String[] fields : entries(passwd, 7)) {
            Integer entryUid = id(fields[2]);
            if (entryUid == null) {
                continue;
            }
            boolean match = userArg.isEmpty() ? entryUid == 0
                    : fields[0].equals(userArg) || fields[2].equals(userArg);
            if (match) {
                entry = Optional.of(fields);
                break;
            }
        }
        if (entry.isPresent()) {
            String[] fields = entry.get();
            name = fields[0];
            uid = id(fields[2]);
            Integer entryGid = id(fields[3]);
            gid = entryGid == null ? 0 : entryGid;
            home = fields[5].isEmpty() ? "/" : fields[5];
        } else if (!userArg.isEmpty()) {
            Integer numeric = requestedId(userArg);
            if (numeric == null) {
                throw KilnException.invalid("unable to find user " + userArg + ": no matching entries in passwd file");
            }
            uid = numeric;
        }

        Set<Integer> supplementary = new LinkedHashSet<>();
        if (!groupArg.isEmpty()) {
            Integer found = null;
            for (String[] fields : entries(group, 4)) {
                if (fields[0].equals(groupArg) || fields[2].equals(groupArg)) {
                    found = id(fields[2]);
                    if (found != null) {
                        break;
                    }
                }
            }
            if (found == null) {
                found = requestedId(groupArg);
                if (found == null) {
                    throw KilnException.invalid("unable to find group " + groupArg
                            + ": no matching entries in group file");
                }
            }
            gid = found;
        } else if (!name.isEmpty()) {
            for (String[] fields : entries(group, 4)) {
                Integer groupId = id(fields[2]);
                if (groupId != null && List.of(fields[3].split(",")).contains(name)) {
                    supplementary.add(groupId);
                }
            }
        }
        List<Integer> additional = new ArrayList<>();
        additional.add(gid);
        for (int g : supplementary) {
            if (g != gid) {
                additional.add(g);
            }
        }
        return new ImageUser(uid, gid, additional, home);
    }

    /**
     * A {@code --group-add} group: a name from the image's /etc/group, or a gid (Docker's rule: a number that is
     * no group's name is taken as a gid).
     */
    public static int groupId(Path rootfs, String group) {
        for (String[] fields : entries(RootfsFile.read(rootfs, "/etc/group"), 4)) {
            if (fields[0].equals(group) && id(fields[2]) != null) {
                return id(fields[2]);
            }
        }
        Integer numeric = requestedId(group);
        if (numeric == null) {
            throw KilnException.invalid("unable to find group " + group + ": no matching entries in group file "
                    + "(--group-add)");
        }
        return numeric;
    }

    /** The colon-separated lines of a passwd/group file, padded to {@code fields} fields; blank lines skipped. */
    private static List<String[]> entries(Optional<String> file, int fields) {
        List<String[]> out = new ArrayList<>();
        if (file.isEmpty()) {
            return out;
        }
        for (String line : file.get().split("\n")) {
            String trimmed = line.strip();
            if (trimmed.isEmpty() || trimmed.startsWith("#")) {
                continue;
            }
            String[] parts = trimmed.split(":", -1);
            String[] padded = new String[fields];
            for (int i = 0; i < fields; i++) {
                padded[i] = i < parts.length ? parts[i] : "";
            }
            out.add(padded);
        }
        return out;
    }

    /** A numeric id the user asked for; null if not numeric, an error if numeric but out of range (as Docker). */
    private static Integer requestedId(String text) {
        if (!text.isEmpty() && text.chars().allMatch(Character::isDigit) && id(text) == null) {
            throw KilnException.invalid("uids and gids must be in range 0-" + MAX_ID + ": " + text);
        }
        return id(text);
    }

    /** A uid/gid in Docker's accepted range, or null if {@code text} is not one. */
    private static Integer id(String text) {
        if (text.isEmpty() || text.length() > 10 || !text.chars().allMatch(Character::isDigit)) {
            return null;
        }
        long value = Long.parseLong(text);
        return value <= MAX_ID ? (int) value : null;
    }
}
