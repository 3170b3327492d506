package dev.kiln.containerd;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A rootfs mount as containerd hands it to a shim (type, options as mount(8) takes them), split as containerd's
 * own mount package does: the options that are MS_* flags, and the rest, the file system's data (overlay's
 * {@code lowerdir=}, {@code upperdir=}, {@code workdir=}, {@code index=off}...). {@code bind}/{@code rbind} mount
 * with MS_BIND; propagation, remount and loop options, and a read-only bind (two calls), go to mount(8).
 */
record RootfsMount(String type, long flags, String data, boolean plain) {

    private static final Map<String, Long> SET = Map.ofEntries(Map.entry("ro", 1L), Map.entry("nosuid", 2L),
            Map.entry("nodev", 4L), Map.entry("noexec", 8L), Map.entry("sync", 16L), Map.entry("dirsync", 128L),
            Map.entry("noatime", 1024L), Map.entry("nodiratime", 2048L), Map.entry("bind", 4096L),
            Map.entry("rbind", 4096L | 16384L), Map.entry("relatime", 1L << 21), Map.entry("strictatime", 1L << 24));
    private static final List<String> CLEAR = List.of("rw", "suid", "dev", "exec", "async", "atime", "diratime",
            "defaults");

    static RootfsMount of(String type, List<String> options) {
        long flags = 0;
        boolean plain = true;
        List<String> data = new ArrayList<>();
        for (String o : options) {
            Long bit = SET.get(o);
            if (bit != null) flags |= bit;
            else if (CLEAR.contains(o)) continue;
            else if (o.equals("remount") || o.endsWith("shared") || o.endsWith("private") || o.endsWith("slave")
                    || o.endsWith("unbindable") || o.equals("loop")) plain = false;
            else data.add(o);
        }
        // a read-only bind takes a second, remounting call: mount(8) does that
        if ((flags & 4096L) != 0 && (flags & 1L) != 0) plain = false;
        return new RootfsMount(type, flags, String.join(",", data), plain);
    }

    /** mount(2) of {@code source} on {@code target}: 0, or the errno (-1 if this mount is not a plain one). */
    int mount(String source, Path target) {
        if (!plain) return -1;
        String fsType = (flags & 4096L) != 0 ? "none" : type;
        return Libc.mount(source, target.toString(), fsType, flags, data);
    }
}
