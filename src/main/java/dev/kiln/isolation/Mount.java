package dev.kiln.isolation;

import java.util.List;

/**
 * The one plain record where rootfs and runtimes meet (as containerd's {@code Mount}): what to mount where, with
 * which options. An overlay root is {@code Mount("overlay", "overlay", "/", [lowerdir=…, upperdir=…, workdir=…])}.
 */
public record Mount(String type, String source, String target, List<String> options) {

    public Mount {
        options = List.copyOf(options);
    }
}
