package dev.kiln.api;

import dev.kiln.KilnException;
import org.eclipse.jetty.server.Handler;
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
 */
final class ApiHandler extends Handler.Abstract {

    private final List<Router> routers;
    private final boolean debug;

    ApiHandler(List<Router> routers, boolean debug) {
        this.routers = routers;
        this.debug = debug;
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
        Exchange x = new Exchange(request, response, match == null ? Map.of() : match.params());
        try {
            if (match == null) {
                throw new KilnException(KilnException.Kind.NOT_FOUND, wrongMethod[0]
                        ? request.getMethod() + " is not supported on " + path
                        : "kilnd has no endpoint " + request.getMethod() + " " + path);
            }
            match.route().handle(x);
            x.finish();
            callback.succeeded();
        } catch (EOFException e) {
            // the client went away mid-response
            callback.failed(e);
        } catch (Throwable e) {
            fail(x, e, callback);
        }
        return true;
    }

    private void fail(Exchange x, Throwable e, Callback callback) {
        int status = e instanceof KilnException k ? status(k.kind()) : 500;
        String message = e instanceof KilnException ? e.getMessage()
                : (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage().lines().findFirst().orElse(""));
        if (!(e instanceof KilnException) || debug) {
            System.err.println("kilnd: " + x.request().getMethod() + " " + x.request().getHttpURI().getPath()
                    + " failed: " + message);
            if (debug) {
                e.printStackTrace();
            }
        }
        if (x.committed()) {
            // headers are out: the stream carries the error itself (see each streaming endpoint), or is cut short
            callback.failed(e);
            return;
        }
        x.discardBody(1 << 20);
        try {
            java.util.Map<String, Object> body = new java.util.LinkedHashMap<>();
            body.put("message", message);
            if (e instanceof KilnException k && k.exitCode() != null) {
                body.put("exitCode", k.exitCode());
            }
            x.json(status, body);
            x.finish();
            callback.succeeded();
        } catch (IOException | RuntimeException io) {
            callback.failed(io);
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
