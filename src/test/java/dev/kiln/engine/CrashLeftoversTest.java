package dev.kiln.engine;

import dev.kiln.image.Digest;
import dev.kiln.image.Image;
import dev.kiln.isolation.Isolators;
import dev.kiln.testing.BusyboxRootfs;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What a crash of kilnd (or the host) leaves in the image store mid-pull or mid-unpack, made here by hand as the
 * writers name it, is removed when the engine starts again, before kilnd serves; the images themselves stay whole.
 */
class CrashLeftoversTest {

    @TempDir
    Path root;
    Path store;
    Image image;
    Set<Digest> blobs;

    @BeforeEach
    void anImagePulledBeforeTheCrash() throws IOException {
        store = root.resolve("store");
        Path tar = BusyboxRootfs.tarball(Files.createDirectories(root.resolve("work")), Map.of());
        try (Engine e = open()) {
            image = e.images().importRootfs(tar, null, "leftovers/busybox:1");
            e.images().rootfs(image);
            blobs = e.images().store().content().list();
        }
        assertThat(blobs).isNotEmpty();
    }

    @Test
    void aHalfUnpackedTreeAndAnInterruptedRemovalAreGoneAtStart() throws IOException {
        Path rootfs = store.resolve("rootfs");
        // RootfsCache's names: .unpack-SHORTID-UUID while layers apply, .remove-SHORTID-UUID while deleting
        Path unpack = rootfs.resolve(".unpack-" + image.id().shortId() + "-" + UUID.randomUUID());
        Files.createDirectories(unpack.resolve("bin"));
        Files.writeString(unpack.resolve("bin/half"), "half a layer");
        Path removal = rootfs.resolve(".remove-0123456789ab-" + UUID.randomUUID());
        Files.createDirectories(removal.resolve("etc"));
        Files.writeString(removal.resolve("etc/passwd"), "root:x:0:0::/root:/bin/sh\n");

        try (Engine e = open()) {
            assertThat(unpack).doesNotExist();
            assertThat(removal).doesNotExist();
            Path tree = e.images().rootfsPath(image.id());
            assertThat(tree.resolve("bin/busybox")).as("the image's unpacked tree stays").isRegularFile();
            assertThat(e.images().rootfs(e.images().resolve("leftovers/busybox:1"))).isEqualTo(tree);
        }
    }

    @Test
    void anInterruptedDownloadsIngestFileIsGoneAtStart() throws IOException {
        // ContentStore's name: HEX.UUID (or any.UUID) in ROOT/ingest while a blob is written
        Path ingest = store.resolve("ingest").resolve("ab".repeat(32) + "." + UUID.randomUUID());
        Files.writeString(ingest, "the first bytes of a layer");
        Path any = store.resolve("ingest").resolve("any." + UUID.randomUUID());
        Files.writeString(any, "{\"schemaVersion\":");

        try (Engine e = open()) {
            assertThat(ingest).doesNotExist();
            assertThat(any).doesNotExist();
            assertThat(e.images().store().content().list()).as("committed blobs stay").isEqualTo(blobs);
            assertThat(e.images().resolve("leftovers/busybox:1").id()).isEqualTo(image.id());
        }
    }

    @Test
    void aBuildsContextAndMountedStepTreeAreGoneAtStart() throws IOException {
        // Builder's names: ROOT/build/step-UUID/{upper,work,merged} (merged an overlay over the parent's tree) and
        // the context's directory; a kilnd killed mid-step leaves both, the overlay still mounted
        Path build = store.resolve("build");
        Path step = build.resolve("step-" + UUID.randomUUID());
        Path merged = step.resolve("merged");
        Files.createDirectories(step.resolve("upper"));
        Files.createDirectories(step.resolve("work"));
        Files.writeString(step.resolve("upper/half-copied"), "a COPY's file");
        Path context = Files.createDirectories(build.resolve("context-" + UUID.randomUUID()));
        Files.writeString(context.resolve("Dockerfile"), "FROM scratch\n");
        Path parent;
        try (Engine e = open()) {
            parent = e.images().rootfsPath(image.id());
        }
        dev.kiln.rootfs.Mounts.overlay(parent, step.resolve("upper"), step.resolve("work"), merged);
        try {
            assertThat(merged.resolve("bin/busybox")).isRegularFile();

            try (Engine e = open()) {
                assertThat(dev.kiln.rootfs.Mounts.isMounted(merged)).as("the step's overlay unmounted").isFalse();
                assertThat(build).isEmptyDirectory();
                assertThat(parent.resolve("bin/busybox")).as("the parent's tree stays").isRegularFile();
            }
        } finally {
            dev.kiln.rootfs.Mounts.unmount(merged, false);
        }
    }

    /**
     * A leftover that cannot be deleted (an immutable file a sandbox's image or build made; any tree whose names an
     * image chose) is logged and left: it made every later start of kilnd fail (review of 2026-12-08).
     */
    @Test
    void aLeftoverThatCannotBeDeletedDoesNotKeepTheEngineFromStarting() throws Exception {
        Path removal = Files.createDirectories(store.resolve("rootfs/.remove-0123456789ab-" + UUID.randomUUID()));
        Path context = Files.createDirectories(store.resolve("build/context-" + UUID.randomUUID()));
        List<Path> stuck = List.of(Files.writeString(removal.resolve("immutable"), "x"),
                Files.writeString(context.resolve("immutable"), "x"));
        for (Path f : stuck) {
            assertThat(new ProcessBuilder("chattr", "+i", f.toString()).inheritIO().start().waitFor()).isZero();
        }
        try {
            try (Engine e = open()) {
                assertThat(e.images().resolve("leftovers/busybox:1").id()).isEqualTo(image.id());
            }
        } finally {
            for (Path f : stuck) new ProcessBuilder("chattr", "-i", f.toString()).inheritIO().start().waitFor();
        }
    }

    private Engine open() {
        return new Engine(store, root.resolve("run"), Set.of(), new Isolators(List.of(new FakeIsolator())),
                FakeIsolator.NAME, null);
    }
}
