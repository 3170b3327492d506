package dev.kiln.cli;

import dev.kiln.KilnException;
import dev.kiln.tls.TcpAddress;
import dev.kiln.tls.TlsCredentials;

import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The CLI's way to a remote kilnd ({@code -H tcp://HOST:PORT}): TCP with mutual TLS, as {@code docker --tlsverify}.
 * The daemon's certificate must be signed by the CA of {@code --tlscacert} and name HOST in its subject alternative
 * names (HTTPS host-name rules); this side presents {@code --tlscert}/{@code --tlskey}. Defaults are
 * {@code $KILN_CERT_PATH/{ca,cert,key}.pem}, else {@code ~/.kiln/…}, as Docker's {@code ~/.docker}. TLS is not
 * optional on TCP, and so neither is checking the daemon.
 */
final class TlsTransport implements DaemonClient.Transport {

    private static final int CONNECT_TIMEOUT_MS = 10_000;
    private static final int HANDSHAKE_TIMEOUT_MS = 15_000;

    private final TcpAddress address;
    private final SSLSocketFactory sockets;
    private final boolean withCertificate;

    private TlsTransport(TcpAddress address, TlsCredentials credentials) {
        this.address = address;
        this.withCertificate = credentials.key() != null;
        this.sockets = credentials.context().getSocketFactory();
    }

    /**
     * The transport for {@code host} ({@code tcp://…}); {@code ca}, {@code cert} and {@code key} are the flags' values
     * or null for the defaults. A client certificate is optional here (the daemon will refuse the handshake without
     * one, and says so); the CA is not.
     */
    static DaemonClient.Transport of(String host, Path ca, Path cert, Path key) {
        TcpAddress address = TcpAddress.parse(host);
        Path dir = certDirectory();
        Path caFile = ca != null ? ca : dir.resolve("ca.pem");
        if (ca == null && !Files.isRegularFile(caFile)) {
            throw KilnException.invalid("-H " + address + " needs the CA that signed kilnd's certificate: pass "
                    + "--tlscacert CA.pem or put it at " + caFile + " (see docs/remote-access.md)");
        }
        Path certFile = cert;
        Path keyFile = key;
        if (cert == null && key == null) {
            Path c = dir.resolve("cert.pem");
            Path k = dir.resolve("key.pem");
            if (Files.isRegularFile(c) && Files.isRegularFile(k)) {
                certFile = c;
                keyFile = k;
            }
        } else if (cert == null || key == null) {
            certFile = cert != null ? cert : dir.resolve("cert.pem");
            keyFile = key != null ? key : dir.resolve("key.pem");
        }
        return new TlsTransport(address, TlsCredentials.read(caFile, certFile, keyFile));
    }

    private static Path certDirectory() {
        String env = System.getenv("KILN_CERT_PATH");
        return env != null && !env.isEmpty() ? Path.of(env) : Path.of(System.getProperty("user.home"), ".kiln");
    }

    @Override
    public DaemonClient.Connection open() throws IOException {
        Socket tcp = new Socket();
        SSLSocket tls = null;
        try {
            tcp.connect(new InetSocketAddress(address.host(), address.port()), CONNECT_TIMEOUT_MS);
            tcp.setTcpNoDelay(true);
            tls = (SSLSocket) sockets.createSocket(tcp, address.host(), address.port(), true);
            SSLParameters p = tls.getSSLParameters();
            p.setEndpointIdentificationAlgorithm("HTTPS");
            p.setProtocols(TlsCredentials.PROTOCOLS);
            tls.setSSLParameters(p);
            tls.setSoTimeout(HANDSHAKE_TIMEOUT_MS);
            tls.startHandshake();
            tls.setSoTimeout(0);
        } catch (IOException e) {
            (tls != null ? tls : tcp).close();
            throw e;
        }
        InputStream in = tls.getInputStream();
        return new DaemonClient.Connection(in, new AlertAwareOutput(tls.getOutputStream(), in), tls);
    }

    /**
     * Under TLS 1.3 the client's handshake ends before the daemon has checked the client certificate; a refusal then
     * arrives as an alert while the request is being written, and the write fails first with a bare "Broken pipe".
     * On a failed write this reads once to surface the daemon's alert, which says why.
     */
    private static final class AlertAwareOutput extends java.io.FilterOutputStream {
        private final InputStream in;

        AlertAwareOutput(OutputStream out, InputStream in) {
            super(out);
            this.in = in;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            try {
                out.write(b, off, len);
            } catch (IOException e) {
                throw withAlert(e);
            }
        }

        @Override
        public void flush() throws IOException {
            try {
                out.flush();
            } catch (IOException e) {
                throw withAlert(e);
            }
        }

        private IOException withAlert(IOException writeFailure) {
            if (writeFailure instanceof SSLException) {
                return writeFailure;
            }
            try {
                in.read();
            } catch (SSLException alert) {
                alert.addSuppressed(writeFailure);
                return alert;
            } catch (IOException ignored) {
                // no alert to be had: the write's own failure is the news
            }
            return writeFailure;
        }
    }

    @Override
    public String where() {
        return address.toString();
    }

    /**
     * TLS failures become one line that says which side refused and what to check. Under TLS 1.3 the daemon's refusal
     * of the client certificate arrives after the client's handshake, on the first read, so this covers reads too.
     */
    @Override
    public IOException failed(IOException e) {
        SSLException tls = tlsCause(e);
        if (tls == null) {
            return e;
        }
        String why = tls.getMessage() == null ? tls.getClass().getSimpleName() : tls.getMessage();
        String hint;
        if (why.contains("No name matching") || why.contains("No subject alternative")) {
            hint = "kilnd's certificate does not name " + address.host() + " in its subject alternative names;"
                    + " dial a name or IP address it has";
        } else if (why.contains("PKIX") || why.contains("certification path")) {
            hint = "kilnd's certificate is not signed by the CA of --tlscacert";
        } else if (!withCertificate) {
            hint = "kilnd requires a client certificate: pass --tlscert and --tlskey, or put cert.pem and key.pem in "
                    + certDirectory();
        } else if (why.contains("Received fatal alert")) {
            hint = "kilnd refused this client's certificate: --tlscert must be signed by the CA kilnd trusts";
        } else {
            hint = "check --tlscacert, --tlscert and --tlskey";
        }
        return throwing(new KilnException(KilnException.Kind.UNAUTHORIZED, "TLS handshake with kilnd at " + address
                + " failed: " + why.lines().findFirst().orElse(why).strip() + " (" + hint + ")", e));
    }

    private static SSLException tlsCause(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof SSLException s) {
                return s;
            }
        }
        return null;
    }

    private static IOException throwing(KilnException e) {
        throw e;
    }
}
