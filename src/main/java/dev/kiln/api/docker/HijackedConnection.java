package dev.kiln.api.docker;

import dev.kiln.api.Exchange;
import org.eclipse.jetty.io.AbstractConnection;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.HttpStream;
import org.eclipse.jetty.util.BufferUtil;
import org.eclipse.jetty.util.FutureCallback;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;

/**
 * Docker's connection hijacking on Jetty 12: the handler answers {@code 101 UPGRADED} and sets this connection as the
 * request's {@link HttpStream#UPGRADE_CONNECTION_ATTRIBUTE}; once the response is complete Jetty hands the socket's
 * {@link EndPoint} to it, and a {@link Session} then owns the raw bytes in both directions with blocking calls on
 * virtual threads. Bytes the HTTP parser read ahead arrive through {@link #onUpgradeTo}. The raw stream has no idle
 * timeout: {@code docker exec -it} and attach sessions may be quiet for hours, as with Docker.
 */
final class HijackedConnection extends AbstractConnection implements Connection.UpgradeTo {

    /** What runs on the hijacked socket: reads the client's bytes through {@link #read}, writes with {@link #write}. */
    interface Session {
        void run(HijackedConnection connection) throws Exception;
    }

    private final Session session;
    private final ByteBuffer input = BufferUtil.allocate(32 * 1024);
    private ByteBuffer readAhead;

    private HijackedConnection(EndPoint endPoint, Session session) {
        super(endPoint, Runnable::run);
        this.session = session;
    }

    /** True when the client asked for the raw stream ({@code Connection: Upgrade}, {@code Upgrade: tcp}). */
    static boolean requested(Exchange x) {
        String upgrade = x.header("Upgrade");
        return upgrade != null && upgrade.equalsIgnoreCase("tcp");
    }

    /** Answers 101 and arranges for {@code session} to take over the socket once the response is written. */
    static void upgrade(Exchange x, String contentType, Session session) {
        EndPoint endPoint = x.request().getConnectionMetaData().getConnection().getEndPoint();
        x.request().setAttribute(HttpStream.UPGRADE_CONNECTION_ATTRIBUTE, new HijackedConnection(endPoint, session));
        x.status(101);
        x.contentType(contentType);
        x.header("Connection", "Upgrade");
        x.header("Upgrade", "tcp");
    }

    @Override
    public void onUpgradeTo(ByteBuffer buffer) {
        if (BufferUtil.hasContent(buffer)) {
            readAhead = BufferUtil.copy(buffer);
        }
    }

    @Override
    public void onOpen() {
        super.onOpen();
        getEndPoint().setIdleTimeout(0);
        Thread.ofVirtual().name("kilnd-hijack").start(() -> {
            try {
                session.run(this);
            } catch (Exception e) {
                // the client went away or the process's streams failed: nothing more can be said on a raw stream
            } finally {
                getEndPoint().close();
            }
        });
    }

    @Override
    public boolean onIdleExpired(TimeoutException timeout) {
        return false; // never closed for quiet: the session ends when either side does
    }

    @Override
    public void onFillable() {
        // reads are blocking calls from the session (read), not callbacks
    }

    /** The next bytes from the client (a new array), or null at its end of stream (half-close or close). */
    byte[] read() throws IOException {
        if (readAhead != null) {
            byte[] b = BufferUtil.toArray(readAhead);
            readAhead = null;
            if (b.length > 0) {
                return b;
            }
        }
        EndPoint ep = getEndPoint();
        while (true) {
            BufferUtil.clear(input);
            int n = ep.fill(input);
            if (n > 0) {
                return BufferUtil.toArray(input);
            }
            if (n < 0) {
                return null;
            }
            FutureCallback readable = new FutureCallback();
            ep.fillInterested(readable);
            await(readable);
        }
    }

    void write(byte[] bytes, int offset, int length) throws IOException {
        FutureCallback done = new FutureCallback();
        getEndPoint().write(done, ByteBuffer.wrap(bytes, offset, length));
        await(done);
    }

    void write(byte[] bytes) throws IOException {
        write(bytes, 0, bytes.length);
    }

    private static void await(FutureCallback callback) throws IOException {
        try {
            callback.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
        }
    }
}
