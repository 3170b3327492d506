package dev.kiln.dockerfile;

import java.util.List;
import java.util.Map;

/**
 * One instruction of a Dockerfile as written, before any variable is expanded.
 *
 * <ul>
 * <li>{@code keyword}: upper case ({@code RUN}); {@code line}: where it starts (1-based) in {@code file}.
 * <li>{@code flags}: the leading {@code --name=value} options (FROM, RUN, COPY, ADD, HEALTHCHECK), in order;
 * a flag without {@code =} has the value {@code "true"}.
 * <li>{@code rest}: the arguments after the flags, continuations joined, exactly as written (quotes kept).
 * <li>{@code json}: the arguments of the exec form ({@code ["a","b"]}); null for the shell form.
 * <li>{@code heredocs}: the here-documents the line opened ({@code <<EOF}), in order.
 * <li>{@code original}: the instruction as its lines read, for history and messages.
 * </ul>
 */
public record Instruction(String keyword, Map<String, String> flags, String rest, List<String> json,
                          List<Heredoc> heredocs, int line, String file, String original) {

    /** A here-document: its name ({@code EOF}), its body, whether {@code $} expands in it ({@code <<"EOF"}: not). */
    public record Heredoc(String name, String body, boolean expand, boolean chomp) {
    }

    public boolean execForm() {
        return json != null;
    }

    /** {@code Dockerfile:12: RUN ...}: the place a message about this instruction starts with. */
    public String where() {
        return file + ":" + line;
    }

    /** Refuses a flag this instruction does not take, naming the ones it does. */
    public void allowFlags(String... names) {
        for (String f : flags.keySet()) {
            if (!List.of(names).contains(f)) {
                throw DockerfileException.at(this, "unknown flag --" + f + (names.length == 0 ? " (" + keyword
                        + " takes no flags)" : " (" + keyword + " takes --" + String.join(", --", names) + ")"));
            }
        }
    }
}
