package dev.kiln.api;

import dev.kiln.KilnException;
import dev.kiln.KilnLog;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpStream;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;

import java.io.EOFException;
import java.io.IOException;
import java.util.List;
import java.util.Map;

/**
 * Dispatches to the routers (native {@code /v1}, later Docker's) and maps errors once: {@link KilnException} kinds to
 * HTTP statuses, anything else to 500, always as Docker's {@code {"message": …}} body. A client's bad request never
 * takes the daemon down.
 *
 * <p>While a handler runs, its connection has no idle timeout: a wait, a followed log or a VM's boot may be quiet
 * for as long as they need (the body has its own deadline, {@link RequestBody}). The connector's idle timeout is back
 * as soon as the answer is out, for the next request or the connection's end; a hijacked connection
 * (Docker's attach and exec) keeps none.
 */
public final class ApiHandler extends Handler.Abstract {
    private static final KilnLog LOG = KilnLog.of(ApiHandler.class);

    private final List<Router> routers;
    private final ApiLimits limits;
    private final UnfinishedRequests unfinished;

    public ApiHandler(List<Router> routers, ApiLimits limits) {
        this.routers = routers;
        this.limits = limits;
        this.unfinished = new UnfinishedRequests(limits.unfinishedPerPeer());
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        String path = request.getHttpURI().getPath();
        boolean[] wrongMethod = {false};
        Router.Match match = null;
        for (Router r : routers) {
            match = r.match(request.getMethod(), path, wrongMethod);
            if (match != null) {
                break;
            }
        }
        Exchange x = new Exchange(request, response, match == null ? Map.of() : match.params(), limits, unfinished);
        EndPoint endPoint = request.getConnectionMetaData().getConnection().getEndPoint();
        long idleTimeout = endPoint.getIdleTimeout();
        endPoint.setIdleTimeout(0);
        Throwable failure;
        try {
            if (match == null) {
                throw new KilnException(KilnException.Kind.NOT_FOUND, wrongMethod[0]
                        ? request.getMethod() + " is not supported on " + path
                        : "kilnd has no endpoint " + request.getMethod() + " " + path);
            }
            match.route().handle(x);
            x.finish();
            failure = null;
        } catch (EOFException e) {
            // the client went away mid-response
            failure = e;
        } catch (Throwable e) {
            failure = fail(x, e);
        } finally {
            x.releaseBody();
            if (request.getAttribute(HttpStream.UPGRADE_CONNECTION_ATTRIBUTE) == null) {
                endPoint.setIdleTimeout(idleTimeout);
            }
        }
        if (failure == null) {
            callback.succeeded();
        } else {
            callback.failed(failure);
        }
        return true;
    }

    /** Answers {@code e} if the response is not committed yet; returns what the request failed with, or null. */
    private Throwable fail(Exchange x, Throwable e) {
        RefusedRequest refused = e instanceof RefusedRequest r ? r : x.refusal();
        Throwable shown = refused != null ? refused : e;
        int status = refused != null ? refused.status() : e instanceof KilnException k ? status(k.kind()) : 500;
        String message = shown instanceof KilnException ? shown.getMessage()
                : (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage().lines().findFirst().orElse(""));
        // a KilnException is the client's answer, logged at debug level; anything else is kilnd's own error
        String line = x.request().getMethod() + " " + x.request().getHttpURI().getPath() + " failed: " + message;
        if (shown instanceof KilnException) {
            LOG.debug(line, e);
        } else {
            LOG.error(line, e);
        }
        if (x.committed()) {
            // headers are out: the stream carries the error itself (see each streaming endpoint), or is cut short
            return e;
        }
        if (refused != null) {
            x.header("Connection", "close"); // the rest of the body is never read
        } else {
            x.discardBody(1 << 20);
        }
        try {
            java.util.Map<String, Object> body = new java.util.LinkedHashMap<>();
            body.put("message", message);
            if (shown instanceof KilnException k && k.exitCode() != null) {
                body.put("exitCode", k.exitCode());
            }
            x.json(status, body);
            x.finish();
            return null;
        } catch (IOException | RuntimeException io) {
            return io;
        }
    }

    static int status(KilnException.Kind kind) {
        return switch (kind) {
            case NOT_FOUND -> 404;
            case INVALID_ARGUMENT -> 400;
            case CONFLICT -> 409;
            case UNAUTHORIZED -> 401;
            case UNAVAILABLE -> 502;
            case CORRUPT, INTERNAL -> 500;
        };
    }
}
