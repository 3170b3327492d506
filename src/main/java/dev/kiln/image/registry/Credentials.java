package dev.kiln.image.registry;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;

/** Where a registry user name and password come from: nowhere, the caller, or Docker's config and credential helpers. */
public final class Credentials {

    /**
     * A user name and password (or, when the user name is {@code <token>}, an OAuth2 identity token, which is how
     * Docker's credential helpers and {@code identitytoken} entries hand out refresh tokens).
     */
    public record Basic(String username, String password) {
        static final String IDENTITY_TOKEN_USER = "<token>";

        public boolean isIdentityToken() {
            return IDENTITY_TOKEN_USER.equals(username);
        }

        /** Never prints the secret: these records end up in logs and exception messages. */
        @Override
        public String toString() {
            return "Basic[" + username + ", ****]";
        }
    }

    private final Function<String, Optional<Basic>> source;

    private Credentials(Function<String, Optional<Basic>> source) {
        this.source = source;
    }

    public static Credentials none() {
        return new Credentials(host -> Optional.empty());
    }

    /** Explicit credentials, used for whichever host the client connects to. */
    public static Credentials of(String username, String password) {
        Basic basic = new Basic(username, password);
        return new Credentials(host -> Optional.of(basic));
    }

    /** Docker's config: {@code $DOCKER_CONFIG/config.json}, else {@code ~/.docker/config.json}; helpers from PATH. */
    public static Credentials fromDockerConfig() {
        String env = System.getenv("DOCKER_CONFIG");
        Path dir = env != null && !env.isBlank() ? Path.of(env) : Path.of(System.getProperty("user.home"), ".docker");
        return fromDockerConfig(dir, pathDirectories());
    }

    /** The {@code config.json} in {@code configDir}, with credential helpers looked up on PATH. */
    public static Credentials fromDockerConfig(Path configDir) {
        return fromDockerConfig(configDir, pathDirectories());
    }

    /** The {@code config.json} in {@code configDir}, with {@code docker-credential-*} helpers looked up in {@code helperDirs}. */
    public static Credentials fromDockerConfig(Path configDir, List<Path> helperDirs) {
        DockerConfig config = new DockerConfig(configDir.resolve("config.json"), helperDirs);
        return new Credentials(config::lookup);
    }

    /** The credentials for a registry host ({@code host[:port]}), if any are configured. */
    public Optional<Basic> lookup(String host) {
        return source.apply(host);
    }

    private static List<Path> pathDirectories() {
        String path = System.getenv().getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin");
        return Arrays.stream(path.split(":")).filter(s -> !s.isEmpty()).map(Path::of).toList();
    }
}
