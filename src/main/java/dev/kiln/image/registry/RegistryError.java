package dev.kiln.image.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.KilnException.Kind;

import javax.net.ssl.SSLException;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.SocketTimeoutException;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.channels.UnresolvedAddressException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** Turns what went wrong on the wire into the one-line {@link KilnException} a person reads. */
final class RegistryError {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_ERROR_BODY = 64 * 1024;

    private RegistryError() {
    }

    /** A transport failure: nothing listening, DNS, TLS, timeouts. */
    static KilnException unreachable(String host, IOException e) {
        String insecure = "--insecure-registry " + host;
        if (hasCause(e, SSLException.class)) {
            return new KilnException(Kind.UNAVAILABLE, "TLS connection to registry " + host + " failed: "
                    + DockerConfig.oneLine(rootMessage(e)) + " (if it serves plain HTTP or a self-signed certificate, use "
                    + insecure + ")", e);
        }
        if (e instanceof HttpConnectTimeoutException) {
            return new KilnException(Kind.UNAVAILABLE, "cannot reach registry " + host + ": no answer within "
                    + RegistryTransport.CONNECT_TIMEOUT.toSeconds() + " s (check the host name, port and network)", e);
        }
        if (e instanceof HttpTimeoutException || e instanceof SocketTimeoutException) {
            return new KilnException(Kind.UNAVAILABLE, "registry " + host + " stopped answering: "
                    + DockerConfig.oneLine(e.getMessage()) + " (retry; a pull resumes where it stopped)", e);
        }
        if (hasCause(e, UnresolvedAddressException.class)) {
            return new KilnException(Kind.UNAVAILABLE, "cannot reach registry " + host
                    + ": the name does not resolve (check the registry host name)", e);
        }
        if (e instanceof ConnectException) {
            return new KilnException(Kind.UNAVAILABLE, "cannot reach registry " + host
                    + ": connection refused (is it running? for plain HTTP use " + insecure + ")", e);
        }
        return new KilnException(Kind.UNAVAILABLE, "connection to registry " + host + " failed: "
                + DockerConfig.oneLine(rootMessage(e)) + " (retry; for plain HTTP use " + insecure + ")", e);
    }

    static KilnException unauthorized(String host, Optional<Credentials.Basic> credentials) {
        String hint = "(run 'kiln login " + host + "' or check ~/.docker/config.json)";
        if (credentials.isEmpty()) {
            return new KilnException(Kind.UNAUTHORIZED, "authentication to " + host
                    + " failed: it requires credentials and none are configured " + hint);
        }
        String who = credentials.get().isIdentityToken() ? "the stored identity token"
                : "user \"" + credentials.get().username() + "\"";
        return new KilnException(Kind.UNAUTHORIZED, "authentication to " + host + " failed for " + who + " " + hint);
    }

    /**
     * An unexpected status. {@code action} says what we tried, e.g. {@code pushing blob sha256:… to a/b}; the
     * registry's own error codes are appended because they usually say exactly what is wrong.
     */
    static KilnException status(HttpResponse<InputStream> response, String host, String action) {
        int status = response.statusCode();
        String details = details(response);
        String suffix = details.isEmpty() ? "" : " (" + details + ")";
        return switch (status) {
            case 401 -> new KilnException(Kind.UNAUTHORIZED, action + " on " + host + " was refused: not authenticated"
                    + suffix + " (run 'kiln login " + host + "')");
            case 403 -> new KilnException(Kind.UNAUTHORIZED, action + " on " + host + " was denied" + suffix
                    + " (check that your account may access this repository)");
            case 404 -> new KilnException(Kind.NOT_FOUND, action + " on " + host + " failed: not found" + suffix);
            case 429 -> new KilnException(Kind.UNAVAILABLE, action + " on " + host + " was rate-limited" + suffix
                    + " (wait and retry)");
            default -> status >= 500
                    ? new KilnException(Kind.UNAVAILABLE, action + " on " + host + " failed with HTTP " + status
                    + suffix + " (the registry has a problem; retry later)")
                    : new KilnException(Kind.INVALID_ARGUMENT, action + " on " + host + " was refused with HTTP "
                    + status + suffix);
        };
    }

    /** {@code CODE: message; CODE: message} from the distribution error body, or the start of a non-JSON body. */
    static String details(HttpResponse<InputStream> response) {
        byte[] body;
        try (InputStream in = response.body()) {
            body = in == null ? new byte[0] : in.readNBytes(MAX_ERROR_BODY);
        } catch (IOException e) {
            return "";
        }
        if (body.length == 0) {
            return "";
        }
        try {
            JsonNode errors = JSON.readTree(body).path("errors");
            if (errors.isArray() && !errors.isEmpty()) {
                List<String> parts = new ArrayList<>();
                for (JsonNode err : errors) {
                    String code = err.path("code").asText("");
                    String message = err.path("message").asText("");
                    parts.add(code.isEmpty() ? message : message.isEmpty() ? code : code + ": " + message);
                }
                return String.join("; ", parts);
            }
        } catch (IOException notJson) {
            // fall through to the raw text
        }
        String text = DockerConfig.oneLine(new String(body, StandardCharsets.UTF_8));
        return text.length() > 200 ? text.substring(0, 200) + "…" : text;
    }

    private static boolean hasCause(Throwable t, Class<? extends Throwable> type) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (type.isInstance(c)) {
                return true;
            }
        }
        return false;
    }

    private static String rootMessage(Throwable t) {
        String message = t.toString();
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c.getMessage() != null) {
                message = c.getMessage();
            }
        }
        return message;
    }
}
