package dev.kiln.cli;

import dev.kiln.testing.Command;
import dev.kiln.testing.KilndProcess;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The hot commands are named twice: bin/kiln picks the AOT cache by the command's name before any Java runs, and
 * {@link HotCommands} decides which command lines skip picocli. If the two lists drift, a hot command starts with the
 * other commands' cache (picocli's and Jackson's classes, all loaded at start) or a picocli command with a cache that
 * lacks them: both only slower, so nothing else would notice. This runs the real launcher with a stand-in JDK whose
 * {@code java} prints its arguments, for every command kiln has, and checks the cache it picks against HotCommands.
 */
class LauncherCacheTest {

    @TempDir
    Path dir;
    private Path launcher;
    private Path jdk;

    @BeforeEach
    void standIns() throws IOException {
        // a copy of bin/kiln in a home of its own: target/ holds an empty jar and both caches, newer than the jar
        Path home = dir.resolve("home");
        Files.createDirectories(home.resolve("bin"));
        Files.createDirectories(home.resolve("target"));
        launcher = home.resolve("bin/kiln");
        Files.copy(KilndProcess.projectDir().resolve("bin/kiln"), launcher);
        FileTime old = FileTime.fromMillis(System.currentTimeMillis() - 60_000);
        Files.setLastModifiedTime(Files.createFile(home.resolve("target/kiln-0.1.0.jar")), old);
        for (String f : List.of("kiln.aot", "kiln-all.aot", "kiln-options.idx")) {
            Files.createFile(home.resolve("target").resolve(f));
        }
        jdk = dir.resolve("jdk");
        Files.createDirectories(jdk.resolve("bin"));
        Files.writeString(jdk.resolve("release"), "JAVA_VERSION=\"25.0.1\"\n");
        Path java = jdk.resolve("bin/java");
        Files.writeString(java, "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n");
        Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    @Test
    void picksTheHotCacheForExactlyTheHotCommands() {
        List<String> wrong = new ArrayList<>();
        for (String name : names(cli())) {
            check(wrong, HotCommands.HOT.contains(name), name);
        }
        for (String name : names(cli().getSubcommands().get("image"))) {
            check(wrong, HotCommands.HOT_IMAGE.contains(name), "image", name);
        }
        // the command's name after global options and their values, as HotCommands finds it
        check(wrong, true, "--root", "/x", "--debug", "-H", "unix:///k.sock", "ps", "-a");
        check(wrong, true, "--version");
        check(wrong, false, "--root", "/x", "images");
        assertThat(wrong).as("commands whose cache bin/kiln picks differently from HotCommands").isEmpty();
    }

    @Test
    void everyHotCommandIsAKilnCommand() {
        // a name in HotCommands that kiln lacks would be a hot path nobody can reach
        assertThat(names(cli())).containsAll(HotCommands.HOT);
        assertThat(names(cli().getSubcommands().get("image")))
                .containsAll(HotCommands.HOT_IMAGE);
    }

    private void check(List<String> wrong, boolean hot, String... args) {
        List<String> argv = new ArrayList<>(List.of("env", "KILN_JAVA_HOME=" + jdk, launcher.toString()));
        argv.addAll(List.of(args));
        List<String> javaArgs = Command.run(Command.DEFAULT_TIMEOUT, argv).lines().toList();
        String cache = javaArgs.stream().filter(a -> a.startsWith("-XX:AOTCache=")).findFirst().orElse("none");
        String expected = "-XX:AOTCache=" + launcher.getParent().getParent().resolve("target")
                .resolve(hot ? "kiln.aot" : "kiln-all.aot");
        // the daemon is kilnd's own cache's (none here): neither of the CLI's
        boolean daemon = args[0].equals("daemon");
        if (daemon ? !cache.equals("none") : !cache.equals(expected)) {
            wrong.add(String.join(" ", args) + ": " + cache + (daemon ? "" : ", expected " + expected));
        }
        if (hot && !javaArgs.contains("-Dkiln.optionIndex=" + launcher.getParent().getParent()
                .resolve("target/kiln-options.idx"))) {
            wrong.add(String.join(" ", args) + ": no option index");
        }
    }

    private static CommandLine cli() {
        CommandLine cli = new CommandLine(new KilnCommand());
        Commands.register(cli, new String[0]);
        return cli;
    }

    private static List<String> names(CommandLine cli) {
        return List.copyOf(cli.getSubcommands().keySet());
    }
}
