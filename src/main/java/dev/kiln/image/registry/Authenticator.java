package dev.kiln.image.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.KilnException.Kind;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Decides the {@code Authorization} header for each request to one registry host. Nothing is sent until the registry
 * has challenged once (anonymous registries never see credentials); after that, Basic credentials or a Bearer token
 * for the request's scope are sent up front, so each scope costs one token request, not a 401 per request.
 */
final class Authenticator {

    private static final Duration TOKEN_TIMEOUT = Duration.ofSeconds(30);
    /** The distribution token spec's default lifetime when the service does not say. */
    private static final Duration DEFAULT_TOKEN_LIFETIME = Duration.ofSeconds(60);
    /** Renew a little early so a token does not expire between our check and the registry's. */
    private static final Duration EXPIRY_MARGIN = Duration.ofSeconds(10);
    private static final ObjectMapper JSON = new ObjectMapper();

    private record Token(String value, Instant expires) {
    }

    private final String host;
    private final Credentials credentials;
    private final Map<String, Token> tokens = new ConcurrentHashMap<>();
    private volatile WwwAuthenticate.Challenge challenge;
    private volatile Optional<Credentials.Basic> basic; // looked up once, on the first challenge

    Authenticator(String host, Credentials credentials) {
        this.host = host;
        this.credentials = credentials;
    }

    /** The header to send for a request in {@code scope}, fetching a token when the registry uses Bearer auth. */
    Optional<String> authorization(Scope scope) {
        WwwAuthenticate.Challenge c = challenge;
        if (c == null) {
            return Optional.empty();
        }
        if (c.scheme().equals("basic")) {
            return basic().map(Authenticator::basicHeader);
        }
        Token token = tokens.get(scope.value());
        if (token == null || Instant.now().isAfter(token.expires())) {
            token = fetchToken(c, scope);
            tokens.put(scope.value(), token);
        }
        return Optional.of("Bearer " + token.value());
    }

    /**
     * The registry answered 401 with these {@code WWW-Authenticate} values: remember how it wants to be spoken to and
     * drop the token that failed, so the caller's single retry gets fresh authorization.
     */
    void challenged(List<String> wwwAuthenticate, Scope scope) {
        List<WwwAuthenticate.Challenge> all = WwwAuthenticate.parse(wwwAuthenticate);
        Optional<WwwAuthenticate.Challenge> bearer = WwwAuthenticate.find(all, "bearer")
                .filter(c -> c.param("realm") != null);
        if (bearer.isPresent()) {
            challenge = bearer.get();
            tokens.remove(scope.value());
            return;
        }
        if (WwwAuthenticate.find(all, "basic").isPresent()) {
            if (basic().isEmpty()) {
                throw failed(); // retrying without credentials cannot succeed
            }
            challenge = WwwAuthenticate.find(all, "basic").get();
            return;
        }
        throw new KilnException(Kind.UNAUTHORIZED, "registry " + host + " requires an authentication scheme kiln"
                + " does not support (" + (all.isEmpty() ? "no WWW-Authenticate header" : all.getFirst().scheme())
                + "); only Basic and Bearer are supported");
    }

    KilnException failed() {
        return RegistryError.unauthorized(host, basic());
    }

    private Optional<Credentials.Basic> basic() {
        Optional<Credentials.Basic> b = basic;
        if (b == null) {
            b = credentials.lookup(host);
            basic = b;
        }
        return b;
    }

    /**
     * The distribution token flow: GET realm?service=…&scope=… with Basic credentials (or anonymously); with an
     * identity token, Docker's OAuth2 refresh-token POST instead.
     */
    private Token fetchToken(WwwAuthenticate.Challenge c, Scope scope) {
        String realm = c.param("realm");
        String service = c.param("service");
        StringBuilder query = new StringBuilder();
        if (service != null) {
            param(query, "service", service);
        }
        param(query, "scope", scope.value());
        String challengeScopes = c.param("scope");
        if (challengeScopes != null) {
            for (String needed : challengeScopes.split(" ")) {
                if (!needed.isBlank() && !scope.covers(needed)) {
                    param(query, "scope", needed); // the registry asked for more than we thought we needed
                }
            }
        }
        Optional<Credentials.Basic> creds = basic();
        HttpRequest.Builder request;
        URI realmUri;
        try {
            if (creds.isPresent() && creds.get().isIdentityToken()) {
                realmUri = URI.create(realm);
                param(query, "grant_type", "refresh_token");
                param(query, "refresh_token", creds.get().password());
                param(query, "client_id", "kiln");
                request = HttpRequest.newBuilder(realmUri)
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .POST(HttpRequest.BodyPublishers.ofString(query.toString()));
            } else {
                realmUri = URI.create(realm + (realm.contains("?") ? "&" : "?") + query);
                request = HttpRequest.newBuilder(realmUri).GET();
                creds.ifPresent(b -> request.header("Authorization", basicHeader(b)));
            }
        } catch (IllegalArgumentException e) {
            throw new KilnException(Kind.UNAVAILABLE, "registry " + host + " named an invalid token service URL \""
                    + realm + "\"");
        }
        String realmHost = realmUri.getAuthority();
        HttpResponse<InputStream> response;
        try {
            response = RegistryTransport.http().send(request.timeout(TOKEN_TIMEOUT).build(),
                    HttpResponse.BodyHandlers.ofInputStream());
        } catch (IOException e) {
            throw RegistryError.unreachable(realmHost, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(Kind.UNAVAILABLE, "interrupted while authenticating to " + host);
        }
        int status = response.statusCode();
        if (status == 401 || status == 403) {
            RegistryError.details(response);
            throw failed();
        }
        if (status != 200) {
            throw RegistryError.status(response, realmHost, "requesting a token for " + scope.value());
        }
        return parseToken(response, realmHost);
    }

    private Token parseToken(HttpResponse<InputStream> response, String realmHost) {
        JsonNode body;
        try (InputStream in = response.body()) {
            body = JSON.readTree(in.readNBytes(1 << 20));
        } catch (IOException e) {
            throw new KilnException(Kind.UNAVAILABLE, "token service " + realmHost + " sent an unreadable answer: "
                    + DockerConfig.oneLine(e.getMessage()));
        }
        String value = body.path("token").asText("");
        if (value.isEmpty()) {
            value = body.path("access_token").asText("");
        }
        if (value.isEmpty()) {
            throw new KilnException(Kind.UNAVAILABLE, "token service " + realmHost + " answered without a token");
        }
        long seconds = body.path("expires_in").asLong(0);
        Duration lifetime = seconds > 0 ? Duration.ofSeconds(seconds) : DEFAULT_TOKEN_LIFETIME;
        Duration usable = lifetime.compareTo(EXPIRY_MARGIN.multipliedBy(2)) > 0 ? lifetime.minus(EXPIRY_MARGIN) : lifetime;
        return new Token(value, Instant.now().plus(usable));
    }

    private static void param(StringBuilder query, String name, String value) {
        if (!query.isEmpty()) {
            query.append('&');
        }
        query.append(name).append('=').append(URLEncoder.encode(value, StandardCharsets.UTF_8));
    }

    private static String basicHeader(Credentials.Basic b) {
        String pair = b.username() + ":" + b.password();
        return "Basic " + Base64.getEncoder().encodeToString(pair.getBytes(StandardCharsets.UTF_8));
    }
}
