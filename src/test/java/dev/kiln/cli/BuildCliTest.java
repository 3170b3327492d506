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

    /**
     * Multi-stage on busybox alone: stage 1 writes a shell-script program with the tools it has; the final stage is
     * scratch with only the program and the static busybox it runs on, copied with --from by name and by index.
     */
    @Test
    void multiStageIntoScratch() throws IOException {
        Path ctx = context("multi", Map.of("Dockerfile", """
                ARG VERSION=1.0
                FROM %s AS build
                ARG VERSION
                RUN busybox mkdir -p /out && printf '#!/bin/busybox sh\\necho "hello, version %%s"\\n' "$VERSION" \\
                    > /out/hello && busybox chmod 0755 /out/hello
                FROM scratch
                COPY --from=build /bin/busybox /bin/busybox
                COPY --from=0 /out/hello /hello
                ENTRYPOINT ["/hello"]
                """.formatted(BASE)));
        kiln.ok("build", "-t", "multi:1", "--build-arg", "VERSION=2.5", ctx.toString());
        assertThat(kiln.ok("run", "--rm", "multi:1").out()).isEqualTo("hello, version 2.5\n");
        String root = kiln.ok("run", "--rm", "--entrypoint", "/bin/busybox", "multi:1", "sh", "-c",
                "busybox ls / /bin /etc").out();
        assertThat(root).as("only what was copied, and the runtime's mount points (proc, sys, dev, etc's files)")
                .isEqualTo("/:\nbin\ndev\netc\nhello\nproc\nsys\n\n/bin:\nbusybox\n\n/etc:\nhostname\nhosts\n"
                        + "resolv.conf\n");
    }

    /**
     * An image with no layer at all (scratch and metadata only, as Docker builds it): built, built again from the
     * cache, used as a base, inspected (its manifest's empty layer list was left out and read back as none: 500).
     */
    @Test
    void anImageWithNoLayerIsBuiltAndUsedAsABase() throws IOException {
        Path ctx = context("no-layer", Map.of("Dockerfile", """
                FROM scratch
                LABEL org.example.purpose=metadata-only
                """));
        kiln.ok("build", "-t", "no-layer:1", ctx.toString());
        kiln.ok("build", "-t", "no-layer:1", ctx.toString()); // from the cache
        var image = DaemonClient.JSON.readTree(kiln.ok("image", "inspect", "no-layer:1").out()).get(0);
        assertThat(image.path("Config").path("Labels").path("org.example.purpose").asText()).isEqualTo("metadata-only");
        assertThat(image.path("RootFS").path("Layers")).isEmpty();
        Path child = context("on-no-layer", Map.of("Dockerfile", """
                FROM no-layer:1
                LABEL org.example.child=yes
                """));
        kiln.ok("build", "-t", "on-no-layer:1", child.toString());
        var labels = DaemonClient.JSON.readTree(kiln.ok("image", "inspect", "on-no-layer:1").out()).get(0)
                .path("Config").path("Labels");
        assertThat(labels.path("org.example.purpose").asText()).as("the base's").isEqualTo("metadata-only");
        assertThat(labels.path("org.example.child").asText()).isEqualTo("yes");
    }

    /**
     * Multi-stage with a real compiler: stage one is the Debian fixture (gcc), compiles a C program from the context
     * with a build argument baked in, and the final stage is scratch holding only the static binary.
     */
    @Test
    void multiStageCompilesACProgramIntoScratch() throws IOException {
        kiln.ok("import", dev.kiln.testing.DebianFixture.tarball().toString(), "build-test/debian:gcc");
        Path ctx = context("c-program", Map.of("Dockerfile", """
                FROM build-test/debian:gcc AS compile
                ARG GREETING=hello
                WORKDIR /src
                COPY hello.c .
                RUN gcc -static -O2 -DGREETING="\\"$GREETING\\"" -o /hello hello.c && /hello > /dev/null
                FROM scratch
                COPY --from=compile /hello /hello
                ENTRYPOINT ["/hello"]
                """, "hello.c", """
                #include <stdio.h>
                int main(int argc, char **argv) {
                    printf("%s from C, %d argument(s)\\n", GREETING, argc - 1);
                    return argc > 2 ? 3 : 0;
                }
                """));
        KilnRun.Result r = kiln.ok("build", "-t", "c-program:1", "--build-arg", "GREETING=bonjour", ctx.toString());
        assertThat(r.out()).contains("Step 7/8 : COPY --from=compile /hello /hello");
        assertThat(kiln.ok("run", "--rm", "c-program:1", "x").out()).isEqualTo("bonjour from C, 1 argument(s)\n");
        assertThat(kiln.kiln("run", "--rm", "c-program:1", "x", "y").exitCode()).as("the program's own exit code")
                .isEqualTo(3);
        var layers = DaemonClient.JSON.readTree(kiln.ok("image", "inspect", "c-program:1").out()).get(0)
                .path("RootFS").path("Layers");
        assertThat(layers).as("scratch plus one COPY: one layer, nothing of the compiler stage").hasSize(1);
    }

    @Test
    void copyAndAddFollowDockersRules() throws IOException {
        Path ctx = context("copy", Map.of("Dockerfile", """
                FROM %s
                COPY dir /into/
                COPY dir/a.txt /renamed.txt
                COPY *.conf /confs/
                COPY --chmod=0600 dir/a.txt /secret
                COPY dir/a.txt dir/sub/ /multi/
                ADD archive.tar.gz /unpacked
                ADD archive.tar.gz /unpacked-again/
                COPY link-to-a /via-link
                """.formatted(BASE), "dir/a.txt", "a\n", "dir/sub/b.txt", "b\n", "one.conf", "1", "two.conf", "2",
                "other.txt", "x"));
        Files.createSymbolicLink(ctx.resolve("link-to-a"), Path.of("dir/a.txt"));
        tarGz(ctx.resolve("archive.tar.gz"), Map.of("inner/file.txt", "inside\n"));
        kiln.ok("build", "-t", "copy:1", ctx.toString());
        String out = run("copy:1", "cd / && busybox find /into /renamed.txt /confs /multi /unpacked /unpacked-again "
                + "/via-link | busybox sort; busybox stat -c '%a' /secret; cat /via-link /unpacked/inner/file.txt");
        assertThat(out).isEqualTo(String.join("\n", "/confs", "/confs/one.conf", "/confs/two.conf", "/into",
                "/into/a.txt", "/into/sub", "/into/sub/b.txt", "/multi", "/multi/a.txt", "/multi/b.txt",
                "/renamed.txt", "/unpacked", "/unpacked-again", "/unpacked-again/inner", "/unpacked-again/inner/file.txt",
                "/unpacked/inner", "/unpacked/inner/file.txt", "/via-link", "600", "a", "inside", ""));
        Path several = context("copy-several", Map.of("Dockerfile", "FROM " + BASE + "\nCOPY a b /nodir\n", "a", "",
                "b", ""));
        assertThat(kiln.kiln("build", several.toString()).err())
                .contains("When using COPY with more than one source file, the destination must be a directory and "
                        + "end with a /");
        Path url = context("add-url", Map.of("Dockerfile", "FROM " + BASE + "\nADD https://example.com/x /x\n"));
        assertThat(kiln.kiln("build", url.toString()).err()).contains("Dockerfile:2 ADD")
                .contains("sources from URLs and git are not supported");
    }

    @Test
    void argAndEnvScoping() throws IOException {
        Path ctx = context("args", Map.of("Dockerfile", """
                ARG BASE_IMAGE=%s
                ARG ONLY_BEFORE_FROM=meta
                FROM ${BASE_IMAGE}
                ARG ONLY_BEFORE_FROM
                ARG WHO=default
                ARG SHADOWED=from-arg
                ENV SHADOWED=from-env
                ENV GREETING="hello ${WHO:-nobody}" EMPTY=${UNSET:-fallback} ALT=${WHO:+set}
                RUN echo "run sees WHO=$WHO meta=$ONLY_BEFORE_FROM shadowed=$SHADOWED" > /seen
                """.formatted(BASE)));
        KilnRun.Result r = kiln.ok("build", "-t", "args:1", "--build-arg", "WHO=kiln", "--build-arg", "UNUSED=1",
                ctx.toString());
        assertThat(r.out()).contains("[Warning] One or more build-args [UNUSED] were not consumed");
        assertThat(run("args:1", "cat /seen; echo \"$GREETING|$EMPTY|$ALT|$SHADOWED|${WHO-unset}\""))
                .isEqualTo("run sees WHO=kiln meta=meta shadowed=from-env\nhello kiln|fallback|set|from-env|unset\n");
    }

    @Test
    void userWorkdirAndChown() throws IOException {
        Path ctx = context("user", Map.of("Dockerfile", """
                FROM %s
                WORKDIR /srv/app
                COPY --chown=app:extra file.txt ./
                COPY --chown=1234 file.txt /numeric
                USER app
                RUN id -u > /tmp/uid && pwd > /tmp/pwd
                """.formatted(BASE), "file.txt", "x"));
        kiln.ok("build", "-t", "user:1", ctx.toString());
        assertThat(run("user:1", "id -u; cat /tmp/uid /tmp/pwd; busybox stat -c '%u:%g' /srv/app/file.txt "
                + "/numeric /srv/app"))
                .isEqualTo("1000\n1000\n/srv/app\n1000:2000\n1234:1234\n0:0\n");
    }

    @Test
    void rebuildIsCachedAndAChangedFileInvalidates() throws IOException {
        Path ctx = context("cache", Map.of("Dockerfile", """
                FROM %s
                RUN echo one > /one
                COPY src.txt /src.txt
                RUN cat /src.txt > /copy
                """.formatted(BASE), "src.txt", "v1"));
        String first = kiln.ok("build", "-q", ctx.toString()).out().strip();
        KilnRun.Result again = kiln.ok("build", ctx.toString());
        assertThat(again.out().split("Using cache", -1)).as("RUN, COPY and RUN cached").hasSize(4);
        assertThat(again.out()).contains("Successfully built " + first.substring(7, 19));
        Files.writeString(ctx.resolve("src.txt"), "v2");
        KilnRun.Result changed = kiln.ok("build", "-t", "cache:2", ctx.toString());
        assertThat(changed.out().split("Using cache", -1)).as("only the RUN before the COPY").hasSize(2);
        assertThat(run("cache:2", "cat /copy")).isEqualTo("v2");
        KilnRun.Result noCache = kiln.ok("build", "--no-cache", ctx.toString());
        assertThat(noCache.out()).doesNotContain("Using cache");
    }

    @Test
    void dockerignore() throws IOException {
        Path ctx = context("ignore", Map.of("Dockerfile", "FROM " + BASE + "\nCOPY . /ctx/\n",
                ".dockerignore", "*.log\nsecret/\n!keep.log\nDockerfile\n", "app.txt", "app",
                "debug.log", "x", "keep.log", "k", "secret/key", "k"));
        kiln.ok("build", "-t", "ignore:1", ctx.toString());
        assertThat(run("ignore:1", "cd /ctx && busybox find . | busybox sort"))
                .as("the Dockerfile is sent and read, but COPY does not see it when ignored")
                .isEqualTo(".\n./.dockerignore\n./app.txt\n./keep.log\n");
    }

    @Test
    void badInput() throws IOException {
        Path syntax = context("bad-syntax", Map.of("Dockerfile", "FROM " + BASE + "\n# c\nRUN true \\\n  && true\n"
                + "COPY\nFROMM x\n"));
        KilnRun.Result r = kiln.kiln("build", syntax.toString());
        assertThat(r.exitCode()).isNotZero();
        assertThat(r.err().strip()).isEqualTo("kiln: dockerfile parse error: Dockerfile:6: unknown instruction: FROMM "
                + "(did you mean one of FROM, RUN, COPY, ADD, ENV, ARG, ...?)");

        Path failing = context("bad-run", Map.of("Dockerfile", "FROM " + BASE + "\nRUN echo good > /good\n"
                + "RUN echo failing; exit 3\n"));
        r = kiln.kiln("build", failing.toString());
        assertThat(r.exitCode()).isEqualTo(1);
        assertThat(r.out()).contains("Step 3/3 : RUN echo failing; exit 3").contains("failing\n");
        assertThat(r.err()).contains("Dockerfile:3 RUN: The command '/bin/sh -c echo failing; exit 3' returned a "
                + "non-zero code: 3");
        assertThat(kiln.ok("ps", "-a", "-q").out()).as("no sandbox left").isEmpty();
        assertThat(Files.readString(Path.of("/proc/self/mountinfo"))).as("no mount left")
                .doesNotContain(kiln.store().resolve("build").toString());
        Files.writeString(failing.resolve("Dockerfile"), "FROM " + BASE + "\nRUN echo good > /good\nRUN true\n");
        assertThat(kiln.ok("build", failing.toString()).out()).as("the cache kept the last good step")
                .contains("Step 2/3 : RUN echo good > /good\n ---> Using cache");

        Path secret = Files.writeString(work.resolve("host-secret"), "host secret");
        Path escape = context("bad-symlink", Map.of("Dockerfile", "FROM " + BASE + "\nCOPY link /stolen\n"));
        Files.createSymbolicLink(escape.resolve("link"), secret);
        Files.createSymbolicLink(escape.resolve("up"), Path.of("../../../../../../.." + secret));
        r = kiln.kiln("build", escape.toString());
        assertThat(r.err()).as("the link resolves inside the context, where there is no such file")
                .contains("file not found in build context").doesNotContain("host secret");
        Files.writeString(escape.resolve("Dockerfile"), "FROM " + BASE + "\nCOPY up /stolen\n");
        assertThat(kiln.kiln("build", escape.toString()).err()).contains("file not found in build context");

        Path parent = context("bad-parent", Map.of("Dockerfile", "FROM " + BASE + "\nCOPY ../host-secret /x\n"));
        assertThat(kiln.kiln("build", parent.toString()).err())
                .contains("Dockerfile:2 COPY: forbidden path outside the build context: ../host-secret");
    }

    static void tarGz(Path file, Map<String, String> entries) throws IOException {
        try (var out = new org.apache.commons.compress.archivers.tar.TarArchiveOutputStream(
                new java.util.zip.GZIPOutputStream(Files.newOutputStream(file)))) {
            for (var e : entries.entrySet()) {
                byte[] b = e.getValue().getBytes(java.nio.charset.StandardCharsets.UTF_8);
                var entry = new org.apache.commons.compress.archivers.tar.TarArchiveEntry(e.getKey());
                entry.setSize(b.length);
                out.putArchiveEntry(entry);
                out.write(b);
                out.closeArchiveEntry();
            }
        }
    }

    @Test
    void configInstructionsHeredocsAndOnbuild() throws IOException {
        Path base = context("onbuild-base", Map.of("Dockerfile", """
                FROM %s
                CMD ["echo", "base cmd"]
                ONBUILD RUN echo triggered > /onbuild
                """.formatted(BASE)));
        kiln.ok("build", "-t", "onbuild-base:1", base.toString());
        Path ctx = context("config", Map.of("Dockerfile", """
                # syntax=docker/dockerfile:1
                FROM onbuild-base:1
                SHELL ["/bin/sh", "-e", "-c"]
                RUN <<EOF
                echo from a heredoc > /heredoc
                echo second line >> /heredoc
                EOF
                COPY <<-EOT /etc/motd
                \thello $HOSTNAME_UNSET!
                \tEOT
                EXPOSE 80 53/udp 8000-8001
                VOLUME /data
                STOPSIGNAL SIGINT
                HEALTHCHECK --interval=30s --retries=2 CMD wget -q localhost || exit 1
                ENTRYPOINT ["sh", "-c", "cat /onbuild /heredoc /etc/motd"]
                """));
        KilnRun.Result r = kiln.ok("build", "-t", "config:1", ctx.toString());
        assertThat(r.out()).contains("syntax directive (docker/dockerfile:1) is ignored")
                .contains("# Executing 1 build trigger");
        assertThat(kiln.ok("run", "--rm", "config:1").out())
                .as("ONBUILD ran, the heredocs wrote, ENTRYPOINT reset the base's CMD")
                .isEqualTo("triggered\nfrom a heredoc\nsecond line\nhello !\n");
        String inspect = kiln.ok("image", "inspect", "config:1").out();
        assertThat(inspect).contains("\"80/tcp\"", "\"53/udp\"", "\"8000/tcp\"", "\"8001/tcp\"", "\"/data\"",
                "SIGINT");
        var health = DaemonClient.JSON.readTree(inspect).get(0).path("Config").path("Healthcheck");
        assertThat(health.path("Test").toString()).isEqualTo("[\"CMD-SHELL\",\"wget -q localhost || exit 1\"]");
        assertThat(health.path("Interval").asLong()).as("nanoseconds, as Docker stores it").isEqualTo(30_000_000_000L);
        assertThat(health.path("Retries").asInt()).isEqualTo(2);
    }

    /** --target stops at a stage; -q prints only the ID, --iidfile writes it, --label lands in the image's labels. */
    @Test
    void targetQuietIidfileAndLabels() throws IOException {
        Path ctx = context("target", Map.of("Dockerfile", """
                FROM %s AS first
                RUN echo first > /stage
                FROM first AS second
                RUN echo second > /stage
                """.formatted(BASE)));
        Path iid = work.resolve("iid");
        String quiet = kiln.ok("build", "-q", "--target", "first", "--iidfile", iid.toString(), "--label",
                "team=kiln", "-t", "target:1", ctx.toString()).out();
        assertThat(quiet).matches("sha256:[0-9a-f]{64}\n");
        assertThat(Files.readString(iid)).isEqualTo(quiet.strip());
        assertThat(run("target:1", "cat /stage")).as("the build stopped at stage first").isEqualTo("first\n");
        assertThat(DaemonClient.JSON.readTree(kiln.ok("image", "inspect", "target:1").out()).get(0)
                .path("Config").path("Labels").path("team").asText()).isEqualTo("kiln");
        assertThat(kiln.kiln("build", "--target", "third", ctx.toString()).err())
                .contains("target stage \"third\" could not be found");
    }

    /** RUN steps under gVisor: the step runs in runsc's sentry (its kernel says so), its layer is the same. */
    @Test
    void runStepsUnderGvisor() throws IOException {
        dev.kiln.testing.Command.require("runsc", "runsc");
        Path ctx = context("gvisor", Map.of("Dockerfile", """
                FROM %s
                RUN dmesg | grep -q gVisor && echo "built under gVisor" > /where
                """.formatted(BASE)));
        kiln.ok("build", "--isolation", "gvisor", "-t", "gvisor-built:1", ctx.toString());
        assertThat(run("gvisor-built:1", "cat /where")).isEqualTo("built under gVisor\n");
    }
}
