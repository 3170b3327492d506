package dev.kiln.image.archive;

import java.nio.charset.StandardCharsets;

/**
 * What an archive entry's name may be so that a Linux filesystem can hold it: no NUL (it ends a C string), no
 * component longer than NAME_MAX (255 bytes), the whole shorter than PATH_MAX (4096 bytes). The same rule for
 * image layers, {@code docker cp} archives and {@code kiln import}, checked before anything is written.
 */
public final class EntryName {
    static final int NAME_MAX = 255;
    static final int PATH_MAX = 4096;

    private EntryName() {
    }

    /** Null when {@code name} (an entry's name or link target) is fine; else why not, completing "entry X …". */
    public static String problem(String name) {
        if (name.indexOf('\0') >= 0) {
            return "has a name that contains a NUL byte";
        }
        if (name.getBytes(StandardCharsets.UTF_8).length >= PATH_MAX) {
            return "has a name of " + PATH_MAX + " bytes or more, longer than a Linux path can be";
        }
        for (String component : name.split("/")) {
            if (component.getBytes(StandardCharsets.UTF_8).length > NAME_MAX) {
                return "has a name with a part longer than " + NAME_MAX + " bytes, which no Linux filesystem holds";
            }
        }
        return null;
    }
}
