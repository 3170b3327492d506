package dev.kiln.engine.volume;

import dev.kiln.KilnException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The local volume store on a temporary root: names, copy-up that never leaves the image's tree, binds' sources. */
class VolumesTest {

    @TempDir
    Path dir;

    @Test
    void copyUpResolvesInsideTheImageAndCopiesLinksAsLinks() throws Exception {
        Path image = Files.createDirectories(dir.resolve("image"));
        Path outside = Files.createDirectories(dir.resolve("outside"));
        Files.writeString(outside.resolve("secret"), "host secret\n");
        Files.createDirectories(image.resolve("real/data"));
        Files.writeString(image.resolve("real/data/seed"), "seeded\n");
        Files.createSymbolicLink(image.resolve("real/data/escape"), outside.resolve("secret"));
        // the image's /srv is an absolute symlink: followed inside the image's tree, never on the host
        Files.createSymbolicLink(image.resolve("srv"), Path.of("/real"));
        Volumes volumes = new Volumes(dir.resolve("volumes"));

        Mounts m = volumes.prepare(new Mounts(List.of(MountSyntax.volume("v1:/srv/data"))), null, image);
        Path data = volumes.data("v1");
        assertThat(m.list().getFirst().source()).isEqualTo("v1");
        assertThat(Files.readString(data.resolve("seed"))).isEqualTo("seeded\n");
        assertThat(Files.isSymbolicLink(data.resolve("escape"))).isTrue(); // the link itself, not the host's file
        assertThat(Files.readSymbolicLink(data.resolve("escape"))).isEqualTo(outside.resolve("secret"));

        // a volume that already holds data is not copied into again
        Files.writeString(data.resolve("seed"), "changed\n");
        volumes.prepare(new Mounts(List.of(MountSyntax.volume("v1:/srv/data"))), null, image);
        assertThat(Files.readString(data.resolve("seed"))).isEqualTo("changed\n");
    }

    @Test
    void imageVolumesGetAnonymousVolumesAndMissingBindSourcesFollowDockersRules() throws Exception {
        Volumes volumes = new Volumes(dir.resolve("volumes"));
        Mounts m = volumes.prepare(new Mounts(List.of(MountSyntax.volume(dir.resolve("made") + ":/made"))),
                Map.of("/var/lib/db", Map.of()), dir);
        assertThat(dir.resolve("made")).isDirectory(); // -v makes it
        MountSpec anonymous = m.list().get(1);
        assertThat(anonymous.anonymous()).isTrue();
        assertThat(anonymous.source()).matches("[0-9a-f]{64}");
        assertThat(volumes.get(anonymous.source()).anonymous()).isTrue();

        assertThatThrownBy(() -> volumes.prepare(new Mounts(List.of(MountSyntax.mount("type=bind,src="
                + dir.resolve("missing") + ",dst=/x"))), null, dir)).isInstanceOf(KilnException.class)
                .hasMessageContaining("bind source path does not exist");
        assertThat(dir.resolve("missing")).doesNotExist();
    }

    @Test
    void namesStayOnePathElement() {
        Volumes volumes = new Volumes(dir.resolve("volumes"));
        for (String bad : List.of("..", "../x", "a/b", "a..b", ".hidden", "")) {
            if (bad.isEmpty()) continue; // an empty name is an anonymous volume
            assertThatThrownBy(() -> volumes.create(bad, Map.of(), Map.of())).isInstanceOf(KilnException.class)
                    .hasMessageContaining("invalid volume name");
        }
        assertThatThrownBy(() -> volumes.create("ok", Map.of(), Map.of("size", "1g")))
                .hasMessageContaining("volume option \"size\" is not supported");
        assertThat(volumes.create("ok", Map.of("a", "b"), Map.of()).labels()).isEqualTo(Map.of("a", "b"));
        assertThat(volumes.list()).extracting(Volume::name).containsExactly("ok");
        volumes.remove("ok");
        assertThat(volumes.list()).isEmpty();
    }
}
