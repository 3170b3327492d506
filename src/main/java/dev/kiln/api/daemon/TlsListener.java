package dev.kiln.api.daemon;

import dev.kiln.api.ApiHandler;
import dev.kiln.api.ApiLimits;

import dev.kiln.KilnException;
import dev.kiln.tls.TcpAddress;
import dev.kiln.tls.TlsCredentials;
import org.eclipse.jetty.http.HttpVersion;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.SecureRequestCustomizer;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.SslConnectionFactory;
import org.eclipse.jetty.util.ssl.SslContextFactory;

import java.nio.file.Path;
import java.util.List;

/**
 * A TCP listener of kilnd ({@code kiln daemon --listen tcp://HOST:PORT}). It speaks only TLS 1.2/1.3 and requires a
 * client certificate signed by the CA of {@code --tlscacert}, as {@code dockerd --tlsverify} does: the API can run
 * anything as root, so a TCP listener without mutual TLS is never opened.
 */
public record TlsListener(TcpAddress address, TlsCredentials credentials) {

    /**
     * The listeners for {@code addresses}, all with the same daemon certificate and client CA; none when there are no
     * addresses. Any missing TLS file is a one-line error: there is no plaintext fallback.
     */
    public static List<TlsListener> of(List<String> addresses, Path ca, Path cert, Path key) {
        if (addresses.isEmpty()) {
            return List.of();
        }
        List<TcpAddress> parsed = addresses.stream().map(a -> {
            if (!TcpAddress.is(a)) {
                throw KilnException.invalid("kilnd listens on " + a + "? --listen takes tcp://HOST:PORT (the unix "
                        + "socket is always RUN_ROOT/kiln.sock; choose it with --run-root)");
            }
            return TcpAddress.parse(a);
        }).toList();
        StringBuilder missing = new StringBuilder();
        if (ca == null) {
            missing.append(" --tlscacert CA.pem");
        }
        if (cert == null) {
            missing.append(" --tlscert CERT.pem");
        }
        if (key == null) {
            missing.append(" --tlskey KEY.pem");
        }
        if (!missing.isEmpty()) {
            throw KilnException.invalid("--listen " + parsed.getFirst() + " needs TLS with client certificates: add"
                    + missing + " (see docs/remote-access.md); kilnd never listens on TCP without them");
        }
        TlsCredentials credentials = TlsCredentials.read(ca, cert, key);
        return parsed.stream().map(a -> new TlsListener(a, credentials)).toList();
    }

    /**
     * A connector on {@code server}: TLS with a required client certificate, then HTTP/1.1 as on the unix socket. A
     * peer that sends nothing for {@code idleTimeout} (no handshake, no request) is dropped, as on the unix socket.
     */
    ServerConnector connector(Server server, HttpConfiguration http, java.time.Duration idleTimeout) {
        SslContextFactory.Server tls = new SslContextFactory.Server();
        tls.setKeyStore(credentials.keyStore());
        tls.setKeyStorePassword(TlsCredentials.keyStorePassword());
        tls.setKeyManagerPassword(TlsCredentials.keyStorePassword());
        tls.setTrustStore(credentials.trustStore());
        tls.setNeedClientAuth(true);
        tls.setIncludeProtocols(TlsCredentials.PROTOCOLS);
        tls.setEndpointIdentificationAlgorithm(null); // clients are identified by their CA, not by a host name
        HttpConfiguration https = new HttpConfiguration(http);
        SecureRequestCustomizer secure = new SecureRequestCustomizer();
        secure.setSniHostCheck(false); // clients dial IP addresses and send Host: kiln or docker's placeholder
        https.addCustomizer(secure);
        ServerConnector connector = new ServerConnector(server,
                new SslConnectionFactory(tls, HttpVersion.HTTP_1_1.asString()), new HttpConnectionFactory(https));
        connector.setHost(address.host());
        connector.setPort(address.port());
        connector.setIdleTimeout(idleTimeout.toMillis()); // a running request has none: see ApiHandler
        connector.setAcceptQueueSize(ApiLimits.ACCEPT_QUEUE);
        return connector;
    }
}
