package dev.kiln.dockerfile;

import dev.kiln.KilnException;

/** A Dockerfile kiln cannot build: one line naming the file, the line and the instruction. */
public final class DockerfileException {
    private DockerfileException() {
    }

    static KilnException at(String file, int line, String keyword, String problem) {
        return KilnException.invalid("dockerfile parse error: " + file + ":" + line
                + (keyword == null ? "" : " " + keyword) + ": " + problem);
    }

    public static KilnException at(Instruction i, String problem) {
        return at(i.file(), i.line(), i.keyword(), problem);
    }
}
