package dev.kiln.image;

import dev.kiln.KilnException;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Image references as the distribution reference grammar spells them: registry, repository, tag, digest. */
class ImageRefTest {

    @Test
    void normalisesAsDocker() {
        assertThat(ImageRef.parse("busybox").toString()).isEqualTo("docker.io/library/busybox:latest");
        assertThat(ImageRef.parse("127.0.0.1:5000/x/y:1").registry()).isEqualTo("127.0.0.1:5000");
        assertThat(ImageRef.parse("localhost/app:v1.2-rc_3").tag()).isEqualTo("v1.2-rc_3");
        assertThat(ImageRef.parse("registry.example.com:65535/a__b/c--d.e").repository()).isEqualTo("a__b/c--d.e");
        assertThat(ImageRef.parse("[::1]:5000/x").registry()).isEqualTo("[::1]:5000");
        assertThat(ImageRef.parse("My-Registry.example/x").registry()).isEqualTo("My-Registry.example");
        String digest = "sha256:" + "a".repeat(64);
        assertThat(ImageRef.parse("x@" + digest).digest().toString()).isEqualTo(digest);
    }

    @Test
    void theRegistryPartIsChecked() {
        // issue 11: "ok:../x" stored a tag, "h:99999/x" answered 500 (port out of range)
        for (String ref : List.of("ok:../x", "h:99999/x", "h:0/x", "h:/x", "h:80a/x", "-h.example/x",
                "h-.example/x", "a..b/x", "h.example:5000:1/x", "h_x.example/x", "[::1/x", "h.example\n/x",
                "h.example:-1/x")) {
            assertThatThrownBy(() -> ImageRef.parse(ref)).as(ref.replace("\n", "\\n"))
                    .isInstanceOfSatisfying(KilnException.class, e -> {
                        assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
                        assertThat(e.getMessage()).startsWith("invalid").doesNotContain("\n");
                    });
        }
        assertThatThrownBy(() -> ImageRef.parse("h:99999/x")).hasMessageContaining("PORT 1-65535");
    }

    @Test
    void repositoryTagAndLengthAreChecked() {
        for (String ref : List.of("x:../y", "x:.y", "x:" + "t".repeat(129), "X/y", "x//y", "x/-y", "x__-y",
                "x@sha256:abc", "x:a/b", "h.example/" + "r".repeat(250), "", " ")) {
            assertThatThrownBy(() -> ImageRef.parse(ref)).as(ref).isInstanceOf(KilnException.class);
        }
        assertThat(ImageRef.tag("v1.0")).isEqualTo("v1.0");
        assertThatThrownBy(() -> ImageRef.tag("../x")).isInstanceOf(KilnException.class)
                .hasMessageStartingWith("invalid tag \"../x\"");
    }
}
