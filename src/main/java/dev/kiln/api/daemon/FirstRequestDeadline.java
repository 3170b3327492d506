package dev.kiln.api.daemon;

import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.server.ConnectionMetaData;
import org.eclipse.jetty.util.thread.Scheduler;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * A connection must have sent a whole request head (and, on TCP, finished its TLS handshake) within the idle timeout
 * of being accepted, or it is closed. The idle timeout alone would let a peer trickle one byte of its headers or
 * handshake every few seconds and hold the connection for hours; on TCP that peer need not even hold a certificate.
 * Added to each connector as a bean: Jetty gives it every connection the connector makes.
 */
final class FirstRequestDeadline implements Connection.Listener {

    private final Scheduler scheduler;
    private final Duration deadline;

    FirstRequestDeadline(Scheduler scheduler, Duration deadline) {
        this.scheduler = scheduler;
        this.deadline = deadline;
    }

    @Override
    public void onOpened(Connection connection) {
        if (!(connection instanceof ConnectionMetaData)) {
            return; // TLS below HTTP: its HTTP connection over it is watched, and closing that closes both
        }
        scheduler.schedule(() -> {
            if (connection.getMessagesIn() == 0 && connection.getEndPoint().isOpen()) {
                connection.getEndPoint().close();
            }
        }, deadline.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Override
    public void onClosed(Connection connection) {
        // the scheduled check finds it closed
    }
}
