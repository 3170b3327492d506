package dev.kiln.image.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Runs {@code docker-credential-<name> get} with the server address on stdin, as the Docker CLI does, and reads
 * {@code {"Username":…,"Secret":…}} from stdout. A helper can block on a desktop keyring prompt, so it gets a bounded
 * time and is killed after that.
 */
final class CredentialHelper {

    static final Duration TIMEOUT = Duration.ofSeconds(10);
    /** What every docker-credential-helpers implementation prints when it has nothing for the server. */
    private static final String NOT_FOUND = "credentials not found";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String program;
    private final List<Path> searchDirs;

    CredentialHelper(String name, List<Path> searchDirs) {
        this.program = "docker-credential-" + name;
        this.searchDirs = searchDirs;
    }

    Optional<Credentials.Basic> get(String serverAddress) {
        Path executable = locate();
        Process process;
        try {
            process = new ProcessBuilder(executable.toString(), "get").start();
        } catch (IOException e) {
            throw unavailable(serverAddress, "cannot start " + executable + ": " + e.getMessage());
        }
        // Read both pipes concurrently so a chatty helper cannot block on a full pipe while we wait for it.
        CompletableFuture<String> stdout = drain(process.getInputStream());
        CompletableFuture<String> stderr = drain(process.getErrorStream());
        try (OutputStream stdin = process.getOutputStream()) {
            stdin.write(serverAddress.getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            // a helper that exits without reading stdin is judged by its exit code below
        }
        try {
            if (!process.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                process.destroyForcibly();
                throw unavailable(serverAddress, "no answer within " + TIMEOUT.toSeconds() + " s");
            }
            String out = stdout.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            String err = stderr.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            if (process.exitValue() != 0) {
                if (out.contains(NOT_FOUND) || err.contains(NOT_FOUND)) {
                    return Optional.empty();
                }
                String why = DockerConfig.oneLine(out.isBlank() ? err : out);
                throw unavailable(serverAddress, "exit " + process.exitValue() + (why.isEmpty() ? "" : ": " + why));
            }
            return parse(out, serverAddress);
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
            throw unavailable(serverAddress, "interrupted");
        } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
            process.destroyForcibly();
            throw unavailable(serverAddress, "cannot read its output");
        }
    }

    private Optional<Credentials.Basic> parse(String out, String serverAddress) {
        JsonNode node;
        try {
            node = JSON.readTree(out);
        } catch (IOException e) {
            throw unavailable(serverAddress, "its output is not JSON");
        }
        String user = node.path("Username").asText("");
        String secret = node.path("Secret").asText("");
        if (secret.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new Credentials.Basic(user, secret));
    }

    private Path locate() {
        for (Path dir : searchDirs) {
            Path candidate = dir.resolve(program);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        throw KilnException.invalid("credential helper " + program + " named in the Docker config is not on PATH"
                + " (install it, or remove it from credHelpers/credsStore in config.json)");
    }

    private static CompletableFuture<String> drain(InputStream in) {
        CompletableFuture<String> f = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try (in) {
                f.complete(new String(in.readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                f.completeExceptionally(e);
            }
        });
        return f;
    }

    private KilnException unavailable(String serverAddress, String why) {
        return new KilnException(KilnException.Kind.UNAVAILABLE, "credential helper " + program + " failed for "
                + serverAddress + ": " + why + " (check it with: echo " + serverAddress + " | " + program + " get)");
    }
}
