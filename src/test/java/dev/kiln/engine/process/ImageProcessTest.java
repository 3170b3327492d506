package dev.kiln.engine.process;

import dev.kiln.testing.BusyboxRootfs;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.kiln.KilnException;
import dev.kiln.image.ImageConfig;
import dev.kiln.isolation.ProcessSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Docker's entrypoint/cmd, env, working directory and user rules. */
class ImageProcessTest {

    @TempDir
    Path rootfs;

    @BeforeEach
    void setUp() throws IOException {
        Files.createDirectories(rootfs.resolve("etc"));
        Files.writeString(rootfs.resolve("etc/passwd"), BusyboxRootfs.PASSWD);
        Files.writeString(rootfs.resolve("etc/group"), BusyboxRootfs.GROUP);
    }

    // ---- entrypoint and cmd ----

    @Test
    void imageEntrypointAndCmdWithoutFlags() {
        assertThat(args(image(List.of("/entry", "-x"), List.of("serve")), flags(null, List.of())))
                .containsExactly("/entry", "-x", "serve");
    }

    @Test
    void argsAfterTheImageReplaceCmdButKeepEntrypoint() {
        assertThat(args(image(List.of("/entry"), List.of("serve")), flags(null, List.of("debug", "--v"))))
                .containsExactly("/entry", "debug", "--v");
    }

    @Test
    void entrypointFlagResetsTheImagesCmd() {
        assertThat(args(image(List.of("/entry"), List.of("serve")), flags(List.of("/bin/sh"), List.of())))
                .containsExactly("/bin/sh");
        assertThat(args(image(List.of("/entry"), List.of("serve")), flags(List.of("/bin/sh"), List.of("-c", "x"))))
                .containsExactly("/bin/sh", "-c", "x");
    }

    @Test
    void emptyEntrypointClearsIt() {
        assertThat(args(image(List.of("/entry"), List.of("serve")), flags(List.of(""), List.of("ls", "/"))))
                .containsExactly("ls", "/");
        assertThat(args(image(List.of("/entry"), List.of("serve")), flags(List.of(), List.of("ls"))))
                .containsExactly("ls");
    }

    @Test
    void noCommandAtAllIsDockersError() {
        assertThatThrownBy(() -> args(image(null, null), flags(null, List.of())))
                .isInstanceOf(KilnException.class).hasMessage("no command specified")
                .extracting(e -> ((KilnException) e).kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
        assertThatThrownBy(() -> args(image(List.of("/entry"), List.of("serve")), flags(List.of(""), List.of())))
                .hasMessage("no command specified");
    }

    // ---- environment ----

    @Test
    void envMergesImageThenFlagsWithDefaults() {
        ImageConfig image = withEnv(List.of("PATH=/opt/bin", "A=image", "B=image"));
        ProcessSpec p = resolve(image, envFlags(List.of("B=flag", "C=flag")), Map.of());
        assertThat(p.env()).containsExactly("PATH=/opt/bin", "HOSTNAME=box", "B=flag", "C=flag", "A=image",
                "HOME=/root");
    }

    @Test
    void defaultPathWhenImageHasNone() {
        ProcessSpec p = resolve(withEnv(List.of("A=1")), envFlags(List.of()), Map.of());
        assertThat(p.env()).startsWith("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=box").contains("A=1");
    }

    @Test
    void bareKeyTakesCallersValueOrUnsets() {
        ImageConfig image = withEnv(List.of("TOKEN=image", "KEEP=1"));
        assertThat(resolve(image, envFlags(List.of("TOKEN")), Map.of("TOKEN", "caller")).env())
                .contains("TOKEN=caller", "KEEP=1");
        assertThat(resolve(image, envFlags(List.of("TOKEN")), Map.of()).env())
                .contains("KEEP=1").noneMatch(e -> e.startsWith("TOKEN"));
    }

    @Test
    void ttyAddsTermAndHomeComesFromPasswdUnlessSet() {
        ImageProcess.Flags tty = new ImageProcess.Flags(null, List.of(), List.of(), null, "app", true, true);
        ProcessSpec p = resolve(withEnv(List.of()), tty, Map.of());
        assertThat(p.env()).contains("TERM=xterm", "HOME=/home/app");
        assertThat(p.tty()).isTrue();
        assertThat(p.stdin()).isTrue();
        ProcessSpec own = resolve(withEnv(List.of("HOME=/data")), envFlags(List.of()), Map.of());
        assertThat(own.env()).contains("HOME=/data").doesNotContain("HOME=/root");
    }

    @Test
    void emptyKeyIsRejected() {
        assertThatThrownBy(() -> resolve(withEnv(List.of()), envFlags(List.of("=x")), Map.of()))
                .hasMessage("invalid environment variable: =x");
    }

    // ---- working directory ----

    @Test
    void workdirFlagThenImageThenRoot() {
        ImageConfig withDir = new ImageConfig(null, null, null, null, new ImageConfig.Runtime(null, null, null,
                List.of("sh"), "srv/app/", null, null, null, null), null, null);
        assertThat(resolve(withDir, ImageProcess.Flags.none(), Map.of()).cwd()).isEqualTo("/srv/app");
        ImageProcess.Flags w = new ImageProcess.Flags(null, List.of(), List.of(), "/work/../tmp", null, false, false);
        assertThat(resolve(withDir, w, Map.of()).cwd()).isEqualTo("/tmp");
        assertThat(resolve(image(null, List.of("sh")), ImageProcess.Flags.none(), Map.of()).cwd()).isEqualTo("/");
        ImageProcess.Flags relative = new ImageProcess.Flags(null, List.of(), List.of(), "tmp", null, false, false);
        assertThatThrownBy(() -> resolve(withDir, relative, Map.of()))
                .hasMessage("the working directory 'tmp' is invalid, it needs to be an absolute path");
    }

    @Test
    void aWorkdirNoLinuxPathCanBeIsRefusedOnOneLine() {
        // issue 11: a NUL in WorkingDir answered 500 (InvalidPathException); a 300-byte name failed only in runc
        ImageConfig plain = image(null, List.of("sh"));
        for (String dir : List.of("/a\u0000b", "/" + "a".repeat(300), ("/" + "d".repeat(200)).repeat(21))) {
            ImageProcess.Flags w = new ImageProcess.Flags(null, List.of(), List.of(), dir, null, false, false);
            assertThatThrownBy(() -> resolve(plain, w, Map.of())).isInstanceOfSatisfying(KilnException.class, e -> {
                assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
                assertThat(e.getMessage()).startsWith("the working directory").doesNotContain("\u0000");
            });
        }
        ImageConfig hostile = new ImageConfig(null, null, null, null, new ImageConfig.Runtime(null, null, null,
                List.of("sh"), "srv\u0000x", null, null, null, null), null, null);
        assertThatThrownBy(() -> resolve(hostile, ImageProcess.Flags.none(), Map.of()))
                .isInstanceOf(KilnException.class).hasMessageStartingWith("the image's WorkingDir");
        String longest = "/" + "n".repeat(255);
        ImageProcess.Flags ok = new ImageProcess.Flags(null, List.of(), List.of(), longest, null, false, false);
        assertThat(resolve(plain, ok, Map.of()).cwd()).isEqualTo(longest);
    }

    // ---- user ----

    @Test
    void userFlagThenImageUserThenRoot() {
        ImageConfig imageUser = new ImageConfig(null, null, null, null, new ImageConfig.Runtime("app", null, null,
                List.of("sh"), null, null, null, null, null), null, null);
        ProcessSpec fromImage = resolve(imageUser, ImageProcess.Flags.none(), Map.of());
        assertThat(List.of(fromImage.uid(), fromImage.gid())).containsExactly(1000, 1000);
        assertThat(fromImage.additionalGids()).containsExactly(1000, 2000);

        ImageProcess.Flags root = new ImageProcess.Flags(null, List.of(), List.of(), null, "0", false, false);
        ProcessSpec flag = resolve(imageUser, root, Map.of());
        assertThat(List.of(flag.uid(), flag.gid())).containsExactly(0, 0);
        assertThat(flag.additionalGids()).containsExactly(0);

        ProcessSpec none = resolve(image(null, List.of("sh")), ImageProcess.Flags.none(), Map.of());
        assertThat(List.of(none.uid(), none.gid())).containsExactly(0, 0);
    }

    @Test
    void resolveUserAloneForExec() {
        assertThat(ImageProcess.resolveUser(rootfs, "app:extra"))
                .isEqualTo(new ImageUser(1000, 2000, List.of(2000), "/home/app"));
    }

    private ProcessSpec resolve(ImageConfig image, ImageProcess.Flags flags, Map<String, String> callerEnv) {
        return ImageProcess.resolve(image, flags, rootfs, "box", callerEnv);
    }

    private List<String> args(ImageConfig image, ImageProcess.Flags flags) {
        return resolve(image, flags, Map.of()).args();
    }

    private static ImageConfig image(List<String> entrypoint, List<String> cmd) {
        return new ImageConfig(null, "amd64", "linux", null, new ImageConfig.Runtime(null, null, entrypoint, cmd,
                null, null, null, null, null), null, null);
    }

    private static ImageConfig withEnv(List<String> env) {
        return new ImageConfig(null, "amd64", "linux", null, new ImageConfig.Runtime(null, env, null, List.of("sh"),
                null, null, null, null, null), null, null);
    }

    private static ImageProcess.Flags flags(List<String> entrypoint, List<String> cmd) {
        return new ImageProcess.Flags(entrypoint, cmd, List.of(), null, null, false, false);
    }

    private static ImageProcess.Flags envFlags(List<String> env) {
        return new ImageProcess.Flags(null, List.of(), env, null, null, false, false);
    }
}
