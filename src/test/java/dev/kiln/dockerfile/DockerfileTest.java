package dev.kiln.dockerfile;

import dev.kiln.KilnException;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Dockerfiles read as the Dockerfile reference says Docker reads them. */
class DockerfileTest {

    @Test
    void continuationsCommentsAndFlags() {
        Dockerfile d = Dockerfile.parse("Dockerfile", """
                # a comment
                ARG BASE=busybox
                FROM --platform=linux/amd64 ${BASE} AS build
                RUN echo a \\
                # dropped inside a continuation
                
                    && echo b
                  copy --chown=1:2 --chmod=0755 a b /dst/
                CMD ["sh", "-c", "echo hi"]
                ENTRYPOINT echo [not json
                """);
        List<Instruction> i = d.instructions();
        assertThat(i).extracting(Instruction::keyword).containsExactly("ARG", "FROM", "RUN", "COPY", "CMD",
                "ENTRYPOINT");
        assertThat(i.get(1).flags()).isEqualTo(Map.of("platform", "linux/amd64"));
        assertThat(i.get(1).rest()).isEqualTo("${BASE} AS build");
        assertThat(i.get(2).rest()).isEqualTo("echo a     && echo b");
        assertThat(i.get(2).line()).isEqualTo(4);
        assertThat(i.get(3).flags()).containsEntry("chown", "1:2").containsEntry("chmod", "0755");
        assertThat(i.get(3).line()).isEqualTo(8);
        assertThat(i.get(4).json()).containsExactly("sh", "-c", "echo hi");
        assertThat(i.get(5).json()).isNull();
        assertThat(i.get(5).rest()).isEqualTo("echo [not json");
    }

    @Test
    void escapeDirectiveAndSyntaxNote() {
        Dockerfile d = Dockerfile.parse("Dockerfile", """
                # syntax=docker/dockerfile:1
                # escape=`
                FROM scratch
                COPY a `
                  C:\\dir\\
                """);
        assertThat(d.escape()).isEqualTo('`');
        assertThat(d.notes()).singleElement().asString().contains("syntax directive").contains("ignored");
        assertThat(d.instructions().get(1).rest()).isEqualTo("a   C:\\dir\\");
    }

    @Test
    void aDirectiveAfterACommentIsAComment() {
        Dockerfile d = Dockerfile.parse("Dockerfile", "# hello\n# escape=`\nFROM scratch\nRUN a \\\n b\n");
        assertThat(d.escape()).isEqualTo('\\');
        assertThat(d.instructions().get(1).rest()).isEqualTo("a  b");
    }

    @Test
    void heredocs() {
        Dockerfile d = Dockerfile.parse("Dockerfile", """
                FROM busybox
                RUN <<EOF
                echo one
                echo two
                EOF
                COPY <<-"END" /etc/motd
                \thello $NAME
                \tEND
                RUN true
                """);
        Instruction run = d.instructions().get(1);
        assertThat(run.heredocs()).singleElement().satisfies(h -> {
            assertThat(h.name()).isEqualTo("EOF");
            assertThat(h.body()).isEqualTo("echo one\necho two\n");
            assertThat(h.expand()).isTrue();
        });
        Instruction copy = d.instructions().get(2);
        assertThat(copy.heredocs()).singleElement().satisfies(h -> {
            assertThat(h.body()).isEqualTo("hello $NAME\n");
            assertThat(h.expand()).isFalse();
        });
        assertThat(d.instructions().get(3).line()).isEqualTo(9);
    }

    @Test
    void errorsNameTheFileTheLineAndTheInstruction() {
        assertThatThrownBy(() -> Dockerfile.parse("ctx/Dockerfile", "FROM busybox\n\nRUNN echo\n"))
                .isInstanceOf(KilnException.class)
                .hasMessage("dockerfile parse error: ctx/Dockerfile:3: unknown instruction: RUNN (did you mean one of "
                        + "FROM, RUN, COPY, ADD, ENV, ARG, ...?)");
        assertThatThrownBy(() -> Dockerfile.parse("Dockerfile", "FROM busybox\nRUN <<EOF\necho\n"))
                .hasMessageContaining("Dockerfile:2 RUN: here-document <<EOF has no terminating line");
        assertThatThrownBy(() -> Dockerfile.parse("Dockerfile", "FROM busybox\nSHELL /bin/bash -c\n"))
                .hasMessageContaining("Dockerfile:2 SHELL: SHELL requires the arguments to be in JSON form");
        assertThatThrownBy(() -> Dockerfile.parse("Dockerfile", "# escape=x\nFROM busybox\n"))
                .hasMessageContaining("invalid escape token");
    }

    @Test
    void expansionAsDocker() {
        Map<String, String> env = Map.of("A", "a", "EMPTY", "", "SP", "x y");
        ShellWords w = new ShellWords('\\', env::get);
        assertThat(w.word("$A-${A}-${B:-def}-${EMPTY:-e}-${EMPTY-e}-${A:+alt}-${B:+alt}-$")).isEqualTo(
                "a-a-def-e--alt--$");
        assertThat(w.word("'$A' \"$A\" \\$A \"\\$A\"")).isEqualTo("$A a $A $A");
        assertThat(w.words("a \"b c\" $SP 'd e'")).containsExactly("a", "b c", "x", "y", "d e");
        assertThat(w.word("${B:-${A}x}")).isEqualTo("ax");
        assertThatThrownBy(() -> w.word("${B:?must be set}")).hasMessage("B: must be set");
        assertThatThrownBy(() -> w.word("${A")).hasMessageContaining("missing '}'");
        assertThat(new ShellWords('`', env::get).word("C:\\dir `$A")).isEqualTo("C:\\dir $A");
    }
}
