package dev.kiln.image.registry;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;

/**
 * Copies a response body and aborts when no byte arrives for a while. java.net.http has no read timeout once the
 * headers are in, and a blob may rightly take an hour, so a total timeout is wrong: only a stall is. A shared timer
 * checks each copy; on a stall it closes the body, which wakes the blocked read.
 */
final class StallGuard implements AutoCloseable {

    private static final ScheduledExecutorService TIMER = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "kiln-registry-stall-guard");
        t.setDaemon(true);
        return t;
    });

    private final InputStream in;
    private final long limitNanos;
    private final ScheduledFuture<?> check;
    private volatile long lastProgress = System.nanoTime();
    private volatile boolean tripped;

    private StallGuard(InputStream in, Duration limit) {
        this.in = in;
        this.limitNanos = limit.toNanos();
        long period = Math.max(10, limit.toMillis() / 4);
        this.check = TIMER.scheduleAtFixedRate(this::check, period, period, TimeUnit.MILLISECONDS);
    }

    /**
     * Copies {@code in} to {@code out} until EOF, telling {@code chunk} the byte count after each read; throws when
     * more than {@code maxBytes} arrive or nothing arrives for {@code stall}.
     */
    static long copy(InputStream in, OutputStream out, Duration stall, long maxBytes, LongConsumer chunk)
            throws IOException {
        byte[] buffer = new byte[64 * 1024];
        long total = 0;
        try (StallGuard guard = new StallGuard(in, stall)) {
            while (true) {
                int n;
                try {
                    n = in.read(buffer);
                } catch (IOException e) {
                    guard.throwIfTripped(stall);
                    throw e;
                }
                guard.throwIfTripped(stall);
                if (n < 0) {
                    return total;
                }
                guard.lastProgress = System.nanoTime();
                total += n;
                if (total > maxBytes) {
                    throw new TooLarge(maxBytes);
                }
                out.write(buffer, 0, n);
                chunk.accept(n);
            }
        }
    }

    /** More bytes than the descriptor (or our manifest limit) allows: refusing early keeps a bad server off the disk. */
    static final class TooLarge extends IOException {
        private static final long serialVersionUID = 1L;

        TooLarge(long max) {
            super("more than " + max + " bytes");
        }
    }

    private void throwIfTripped(Duration stall) throws SocketTimeoutException {
        if (tripped) {
            throw new SocketTimeoutException("no data received for "
                    + (stall.toMillis() % 1000 == 0 ? stall.toSeconds() + " s" : stall.toMillis() + " ms"));
        }
    }

    private void check() {
        if (!tripped && System.nanoTime() - lastProgress > limitNanos) {
            tripped = true;
            try {
                in.close();
            } catch (IOException ignored) {
                // the reader sees the trip flag either way
            }
        }
    }

    @Override
    public void close() {
        check.cancel(false);
    }
}
