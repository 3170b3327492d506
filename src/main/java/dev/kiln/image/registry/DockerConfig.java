package dev.kiln.image.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.image.ImageRef;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Reads credentials the way the Docker CLI stores them in {@code config.json}: a per-host {@code credHelpers} entry
 * wins over the global {@code credsStore}, which wins over inline {@code auths}. The file is read on every lookup so a
 * {@code docker login} made while kiln runs is seen.
 */
final class DockerConfig {

    /** The key Docker uses for Docker Hub in config.json and credential helpers, whatever host the API is on. */
    static final String DOCKER_HUB_KEY = "https://index.docker.io/v1/";

    /** Docker Hub's name, its legacy index host and its API host all share the one Hub entry. */
    private static final Set<String> DOCKER_HUB_HOSTS = Set.of(ImageRef.DOCKER_HUB, "index.docker.io", "registry-1.docker.io");

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final List<Path> helperDirs;

    DockerConfig(Path file, List<Path> helperDirs) {
        this.file = file;
        this.helperDirs = List.copyOf(helperDirs);
    }

    Optional<Credentials.Basic> lookup(String host) {
        JsonNode root = read();
        if (root == null) {
            return Optional.empty();
        }
        String serverKey = serverKey(host);
        String helper = root.path("credHelpers").path(host).asText(null);
        if (helper == null && isDockerHub(host)) {
            helper = root.path("credHelpers").path(ImageRef.DOCKER_HUB).asText(null);
        }
        if (helper == null) {
            helper = root.path("credsStore").asText(null);
        }
        if (helper != null && !helper.isEmpty()) {
            Optional<Credentials.Basic> fromHelper = new CredentialHelper(helper, helperDirs).get(serverKey);
            if (fromHelper.isPresent()) {
                return fromHelper;
            }
            // Docker stops here; we also try inline auths, so a CI script's `auths` entry still works on a desktop
            // machine whose credsStore knows nothing about this host.
        }
        return inlineAuth(root.path("auths"), host, serverKey);
    }

    private JsonNode read() {
        try {
            return JSON.readTree(Files.readString(file, StandardCharsets.UTF_8));
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw KilnException.invalid("cannot read " + file + ": " + oneLine(e.getMessage())
                    + " (fix or remove the file, or run 'kiln login' again)");
        }
    }

    /** Exact key first, then any key whose host part matches (keys may carry a scheme and a path, as Docker allows). */
    private Optional<Credentials.Basic> inlineAuth(JsonNode auths, String host, String serverKey) {
        JsonNode entry = auths.get(serverKey);
        if (entry == null) {
            for (Iterator<Map.Entry<String, JsonNode>> it = auths.properties().iterator(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String keyHost = hostOf(e.getKey());
                if (keyHost.equals(host) || (isDockerHub(host) && isDockerHub(keyHost))) {
                    entry = e.getValue();
                    break;
                }
            }
        }
        return entry == null ? Optional.empty() : decode(entry, host);
    }

    private Optional<Credentials.Basic> decode(JsonNode entry, String host) {
        String identityToken = entry.path("identitytoken").asText("");
        if (!identityToken.isEmpty()) {
            return Optional.of(new Credentials.Basic(Credentials.Basic.IDENTITY_TOKEN_USER, identityToken));
        }
        String auth = entry.path("auth").asText("");
        if (!auth.isEmpty()) {
            String pair;
            try {
                pair = new String(Base64.getDecoder().decode(auth.strip()), StandardCharsets.UTF_8);
            } catch (IllegalArgumentException e) {
                throw KilnException.invalid("the auth entry for " + host + " in " + file
                        + " is not valid base64 (run 'kiln login " + host + "' again)");
            }
            int colon = pair.indexOf(':');
            if (colon < 0) {
                throw KilnException.invalid("the auth entry for " + host + " in " + file
                        + " is not user:password (run 'kiln login " + host + "' again)");
            }
            return Optional.of(new Credentials.Basic(pair.substring(0, colon), pair.substring(colon + 1)));
        }
        String user = entry.path("username").asText("");
        if (!user.isEmpty()) {
            return Optional.of(new Credentials.Basic(user, entry.path("password").asText("")));
        }
        return Optional.empty(); // `{}` entries are what Docker writes when a credsStore holds the secret
    }

    /** The server address Docker stores credentials under for an API host. */
    static String serverKey(String host) {
        return isDockerHub(host) ? DOCKER_HUB_KEY : host;
    }

    /** Docker's ConvertToHostname: drop a scheme and anything after the first slash. */
    static String hostOf(String key) {
        String s = key;
        if (s.startsWith("http://")) {
            s = s.substring("http://".length());
        } else if (s.startsWith("https://")) {
            s = s.substring("https://".length());
        }
        int slash = s.indexOf('/');
        return slash >= 0 ? s.substring(0, slash) : s;
    }

    static boolean isDockerHub(String host) {
        return DOCKER_HUB_HOSTS.contains(host);
    }

    static String oneLine(String s) {
        return s == null ? "" : s.strip().replaceAll("\\s*\\R\\s*", " ");
    }
}
