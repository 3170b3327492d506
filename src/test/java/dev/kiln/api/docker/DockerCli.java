package dev.kiln.api.docker;

import dev.kiln.testing.Command;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The real {@code docker} CLI against a kilnd socket: {@code DOCKER_HOST=unix://SOCKET}, an empty
 * {@code DOCKER_CONFIG} (no credentials, no contexts of the machine), stdin from /dev/null unless given, and a
 * timeout on every command so a hung stream fails the test instead of hanging it.
 */
final class DockerCli {

    record Result(int exitCode, String out, String err) {
        String all() {
            return out + err;
        }
    }

    static final Duration TIMEOUT = Duration.ofSeconds(60);

    private final Path socket;
    private final Path config;

    DockerCli(Path socket, Path config) {
        this.socket = socket;
        this.config = config;
    }

    static Path binary() {
        Path docker = Command.which("docker");
        org.junit.jupiter.api.Assumptions.assumeTrue(docker != null,
                "the docker CLI is not on PATH (install docker-ce-cli or Debian's docker.io)");
        return docker;
    }

    Result run(String... args) {
        return run(null, List.of(args));
    }

    Result runWithStdin(String stdin, String... args) {
        return run(stdin, List.of(args));
    }

    /** With {@code stdin} bytes on standard input (a tar for {@code docker cp -}). */
    Result runBytes(byte[] stdin, String... args) {
        try {
            Path in = Files.createTempFile("docker-in-", ".bin");
            try {
                Files.write(in, stdin);
                List<String> argv = new ArrayList<>();
                argv.add(binary().toString());
                argv.addAll(List.of(args));
                return execWithInput(in, argv);
            } finally {
                Files.deleteIfExists(in);
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Runs the argv inside a pseudo-terminal ({@code script -qc}), for {@code -t}. */
    Result runInTerminal(String commandLine) {
        return exec(null, List.of("script", "-qec", commandLine, "/dev/null"));
    }

    /** Exit 0 required; returns stdout. */
    String ok(String... args) {
        Result r = run(args);
        if (r.exitCode() != 0) {
            throw new AssertionError("docker " + String.join(" ", args) + " exited " + r.exitCode() + "\nstdout: "
                    + r.out() + "\nstderr: " + r.err());
        }
        return r.out();
    }

    private Result run(String stdin, List<String> args) {
        List<String> argv = new ArrayList<>();
        argv.add(binary().toString());
        argv.addAll(args);
        return exec(stdin, argv);
    }

    private Result exec(String stdin, List<String> argv) {
        try {
            Path in = Files.createTempFile("docker-in-", ".txt");
            try {
                Files.writeString(in, stdin == null ? "" : stdin);
                return execWithInput(stdin == null ? Path.of("/dev/null") : in, argv);
            } finally {
                Files.deleteIfExists(in);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private Result execWithInput(Path in, List<String> argv) {
        try {
            Path out = Files.createTempFile("docker-out-", ".txt");
            Path err = Files.createTempFile("docker-err-", ".txt");
            try {
                ProcessBuilder pb = new ProcessBuilder(argv)
                        .redirectInput(in.toFile())
                        .redirectOutput(out.toFile())
                        .redirectError(err.toFile());
                pb.environment().put("DOCKER_HOST", "unix://" + socket);
                pb.environment().put("DOCKER_CONFIG", config.toString());
                pb.environment().remove("DOCKER_CONTEXT");
                pb.environment().put("DOCKER_CLI_HINTS", "false");
                Process p = pb.start();
                if (!p.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                    Command.destroyTree(p.toHandle());
                    throw new AssertionError("timed out after " + TIMEOUT.toSeconds() + " s: " + argv
                            + "\nstdout: " + Files.readString(out) + "\nstderr: " + Files.readString(err));
                }
                return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                        Files.readString(err, StandardCharsets.UTF_8));
            } finally {
                Files.deleteIfExists(out);
                Files.deleteIfExists(err);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }
}
