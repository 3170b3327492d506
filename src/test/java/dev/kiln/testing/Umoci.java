package dev.kiln.testing;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The umoci commands the harness uses. Layout references are {@code LAYOUT:TAG}; all runs are as root. */
public final class Umoci {
    private Umoci() {}

    /** Skips the calling test when umoci is absent. */
    public static void require() {
        Command.require("umoci", "umoci");
    }

    /**
     * Unpacks {@code layout:tag} into {@code bundle} (which must not exist) with umoci, keeping owners, and returns
     * {@code bundle/rootfs}. This is the reference rootfs kiln's own unpacking is compared with.
     */
    public static Path unpack(Path layout, String tag, Path bundle) {
        require();
        Command.run("umoci", "unpack", "--image", ref(layout, tag), bundle.toString());
        return bundle.resolve("rootfs");
    }

    /** Creates an empty OCI layout with an empty image at {@code tag}. */
    public static void initWithEmptyImage(Path layout, String tag) {
        Command.run("umoci", "init", "--layout", layout.toString());
        Command.run("umoci", "new", "--image", ref(layout, tag));
    }

    /** Adds the changes made in {@code bundle/rootfs} as a new layer on {@code layout:tag}. */
    public static void repack(Path layout, String tag, Path bundle) {
        Command.run("umoci", "repack", "--image", ref(layout, tag), bundle.toString());
    }

    /** {@code umoci config --image layout:tag OPTIONS...}, e.g. {@code "--config.cmd", "sh"}. */
    public static void config(Path layout, String tag, String... options) {
        List<String> argv = new ArrayList<>(List.of("umoci", "config", "--image", ref(layout, tag)));
        argv.addAll(List.of(options));
        Command.run(Command.DEFAULT_TIMEOUT, argv);
    }

    /** Points {@code newTag} at the manifest of {@code layout:tag}. */
    public static void tag(Path layout, String tag, String newTag) {
        Command.run("umoci", "tag", "--image", ref(layout, tag), newTag);
    }

    /** Removes a tag from the layout's index. */
    public static void removeTag(Path layout, String tag) {
        Command.run("umoci", "rm", "--image", ref(layout, tag));
    }

    /** Removes blobs no tag reaches. */
    public static void gc(Path layout) {
        Command.run("umoci", "gc", "--layout", layout.toString());
    }

    static String ref(Path layout, String tag) {
        return layout + ":" + tag;
    }
}
