package dev.kiln.cli;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code kiln build} with real Dockerfiles against a kilnd in this JVM: RUN steps in runc sandboxes, COPY/ADD from
 * the context, the cache, .dockerignore, ARG/ENV scoping, USER/WORKDIR/--chown, multi-stage into scratch, and the
 * bad inputs of issue 16. The base is the busybox fixture imported as {@code busybox-fixture}.
 */
class BuildCliTest {
    static final String BASE = "build-test/busybox:1";

    @TempDir
    static Path work;
    static KilnRun kiln;

    @BeforeAll
    static void start() throws IOException {
        dev.kiln.testing.Command.require("runc", "runc");
        kiln = new KilnRun(work);
        kiln.importBusybox(BASE, Map.of());
    }

    @AfterAll
    static void stop() {
        if (kiln != null) {
            kiln.close();
        }
    }

    static Path context(String name, Map<String, String> files) throws IOException {
        Path dir = Files.createDirectories(work.resolve(name));
        for (var e : files.entrySet()) {
            Path f = dir.resolve(e.getKey());
            Files.createDirectories(f.getParent());
            Files.writeString(f, e.getValue());
        }
        return dir;
    }

    /** The output of {@code kiln run --rm IMAGE sh -c SCRIPT}. */
    static String run(String image, String script) {
        return kiln.ok("run", "--rm", image, "sh", "-c", script).out();
    }

    @Test
    void runCopyEnvAndTheResultRuns() throws IOException {
        Path ctx = context("basic", Map.of("Dockerfile", """
                FROM %s
                ENV GREETING=hello
                RUN echo "$GREETING from RUN" > /greeting && echo built
                COPY hello.txt /data/
                WORKDIR /data
                CMD ["sh", "-c", "cat /greeting hello.txt; pwd"]
                """.formatted(BASE), "hello.txt", "from the context\n"));
        KilnRun.Result r = kiln.ok("build", "-t", "basic:1", ctx.toString());
        assertThat(r.out()).contains("Step 1/6 : FROM " + BASE).contains("built\n").contains("Successfully built ")
                .contains("Successfully tagged basic:1");
        assertThat(kiln.ok("run", "--rm", "basic:1").out()).isEqualTo("hello from RUN\nfrom the context\n/data\n");
    }
}
