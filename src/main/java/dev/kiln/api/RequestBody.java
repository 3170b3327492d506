package dev.kiln.api;

import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Request;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A request body as a blocking stream, read on the handler's virtual thread, that a client cannot hold open: kilnd
 * waits for it at most {@link ApiLimits#idleTimeout} plus one second per {@link ApiLimits#minBodyRate} bytes
 * received (only time spent waiting for the client counts), and while it waits the body is one of its peer's
 * {@link UnfinishedRequests}. A body the client streams as it goes (stdin typed by a person) is {@code streamed}: no
 * deadline and not counted. A body stopped for its client throws {@link RefusedRequest} at every read after; the
 * rest of it is never read, so its connection closes after the answer.
 */
public final class RequestBody extends InputStream {

    private static final long NOT_WAITING = Long.MIN_VALUE;

    private final Request request;
    private final ApiLimits limits;
    private final UnfinishedRequests unfinished;
    private final boolean streamed;
    private Content.Chunk chunk;
    private boolean ended;
    private long received;
    private long waitedNanos;
    private String peer;
    private boolean counted;
    private RefusedRequest refused;
    private volatile long waitingSince = NOT_WAITING;
    private volatile CompletableFuture<Void> readable;
    private volatile String cutReason;

    RequestBody(Request request, ApiLimits limits, UnfinishedRequests unfinished, boolean streamed) {
        this.request = request;
        this.limits = limits;
        this.unfinished = unfinished;
        this.streamed = streamed;
    }

    /** The refusal that stopped this body, or null. */
    RefusedRequest refused() {
        return refused;
    }

    String peer() {
        if (peer == null) {
            peer = UnfinishedRequests.peerOf(request);
        }
        return peer;
    }

    /** How long this body has been waiting for its client at {@code now} (nanoTime), 0 when it is not waiting. */
    long waitedSoFar(long now) {
        long since = waitingSince;
        return since == NOT_WAITING ? 0 : now - since;
    }

    /** Stops this body from another thread (its peer has too many): the waiting read wakes and refuses. */
    void cut(String reason) {
        cutReason = reason;
        CompletableFuture<Void> r = readable;
        if (r != null) {
            r.complete(null);
        }
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        java.util.Objects.checkFromIndexSize(off, len, b.length);
        while (true) {
            if (refused != null) {
                throw refused;
            }
            if (cutReason != null) {
                throw refuse(RefusedRequest.stalled(cutReason));
            }
            if (chunk != null) {
                ByteBuffer buf = chunk.getByteBuffer();
                if (buf.hasRemaining()) {
                    if (len == 0) {
                        return 0;
                    }
                    int n = Math.min(len, buf.remaining());
                    buf.get(b, off, n);
                    received += n;
                    return n;
                }
                boolean last = chunk.isLast();
                chunk.release();
                chunk = null;
                if (last) {
                    end();
                }
            }
            if (ended) {
                return -1;
            }
            Content.Chunk next = request.read();
            if (next == null) {
                awaitContent();
            } else if (Content.Chunk.isFailure(next)) {
                end();
                Throwable failure = next.getFailure();
                throw failure instanceof IOException io ? io : new IOException(describe(failure), failure);
            } else {
                chunk = next;
            }
        }
    }

    @Override
    public int available() {
        return chunk == null ? 0 : chunk.getByteBuffer().remaining();
    }

    /**
     * Drops what is buffered and stops counting this body among its peer's unfinished ones. The body itself stays
     * the exchange's: an early answer may still read and drop the rest ({@link Exchange#discardBody}); unread, it
     * closes the connection.
     */
    @Override
    public void close() {
        if (chunk != null) {
            chunk.release();
            chunk = null;
        }
        uncount();
    }

    private void awaitContent() throws IOException {
        if (!streamed && !counted) {
            unfinished.admit(this); // may refuse this body
            counted = true;
        }
        CompletableFuture<Void> next = new CompletableFuture<>();
        readable = next;
        request.demand(() -> next.complete(null));
        if (cutReason != null) {
            next.complete(null);
        }
        long start = System.nanoTime();
        waitingSince = start;
        try {
            if (streamed) {
                next.get();
            } else {
                long left = allowanceNanos() - waitedNanos;
                if (left <= 0) {
                    throw new TimeoutException();
                }
                next.get(left, TimeUnit.NANOSECONDS);
            }
        } catch (TimeoutException e) {
            long waited = waitedNanos + System.nanoTime() - start;
            throw refuse(RefusedRequest.stalled("the request body stalled: kilnd received " + received + " of "
                    + (request.getLength() < 0 ? "a chunked body" : request.getLength() + " bytes") + " and waited "
                    + TimeUnit.NANOSECONDS.toSeconds(waited) + " s for more (it waits "
                    + limits.idleTimeout().toSeconds() + " s plus 1 s per " + limits.minBodyRate() + " bytes)"));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            end();
            throw new InterruptedIOException("interrupted while reading the request body");
        } catch (ExecutionException e) {
            throw new IllegalStateException(e); // never completed exceptionally
        } finally {
            waitingSince = NOT_WAITING;
            waitedNanos += System.nanoTime() - start;
        }
    }

    /** The wait this body has earned: the idle timeout plus a second per minBodyRate bytes, saturating. */
    private long allowanceNanos() {
        long earnedSeconds = Math.min(received / limits.minBodyRate(), TimeUnit.DAYS.toSeconds(365));
        return limits.idleTimeout().toNanos() + TimeUnit.SECONDS.toNanos(earnedSeconds);
    }

    private RefusedRequest refuse(RefusedRequest r) {
        refused = r;
        end();
        return r;
    }

    private void end() {
        ended = true;
        uncount();
    }

    private void uncount() {
        if (counted) {
            counted = false;
            unfinished.release(this);
        }
    }

    private static String describe(Throwable t) {
        return t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
    }
}
