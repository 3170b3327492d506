package dev.kiln.dockerfile;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The .dockerignore examples of the Dockerfile reference, and the corners of Docker's pattern matcher. */
class DockerIgnoreTest {

    @Test
    void theReferenceExamples() {
        DockerIgnore i = DockerIgnore.parse("""
                # comment
                */temp*
                */*/temp*
                temp?
                """);
        assertThat(i.excluded("somedir/temporary.txt")).isTrue();
        assertThat(i.excluded("somedir/temp")).isTrue();
        assertThat(i.excluded("somedir/subdir/temporary.txt")).isTrue();
        assertThat(i.excluded("tempa")).isTrue();
        assertThat(i.excluded("tempab")).isFalse();
        assertThat(i.excluded("temporary.txt")).isFalse();
    }

    @Test
    void doubleStarExceptionsAndParents() {
        DockerIgnore i = DockerIgnore.parse("""
                **/*.go
                /build
                *.md
                !README*.md
                README-secret.md
                """);
        assertThat(i.excluded("a/b/c.go")).isTrue();
        assertThat(i.excluded("c.go")).isTrue();
        assertThat(i.excluded("build/out/x")).as("a parent directory matches").isTrue();
        assertThat(i.excluded("build")).isTrue();
        assertThat(i.excluded("builder")).isFalse();
        assertThat(i.excluded("notes.md")).isTrue();
        assertThat(i.excluded("README.md")).isFalse();
        assertThat(i.excluded("README-secret.md")).isTrue();
        assertThat(i.excluded("docs/notes.md")).as("* stays within one element").isFalse();
    }

    @Test
    void everythingButAndCleaning() {
        DockerIgnore i = DockerIgnore.parse("*\n!src\n./src/../tmp\n");
        assertThat(i.excluded("x")).isTrue();
        assertThat(i.excluded("src/main.c")).isFalse();
        assertThat(i.excluded("tmp")).isTrue();
        assertThat(DockerIgnore.parse("a/**").excluded("a/b/c")).isTrue();
        assertThat(DockerIgnore.parse("a/**/z").excluded("a/z")).isTrue();
        assertThat(DockerIgnore.parse("a/**/z").excluded("a/b/c/z")).isTrue();
        assertThat(DockerIgnore.parse("[a-c].txt").excluded("b.txt")).isTrue();
        assertThat(DockerIgnore.parse("[!a-c].txt").excluded("b.txt")).isFalse();
        assertThat(DockerIgnore.parse("\\*.txt").excluded("*.txt")).isTrue();
        assertThat(DockerIgnore.parse("\\*.txt").excluded("a.txt")).isFalse();
    }
}
