package dev.kiln.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Fields;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * One request and its response, with blocking streams: kilnd runs every handler on a virtual thread, so plain
 * {@code InputStream}/{@code OutputStream} code is the simple and right choice here. The request body has a
 * deadline ({@link RequestBody}); the response has none.
 */
public final class Exchange {

    static final ObjectMapper JSON = new ObjectMapper();

    private final Request request;
    private final Response response;
    private final Map<String, String> pathParams;
    private final ApiLimits limits;
    private final UnfinishedRequests unfinished;
    private Fields query;
    private OutputStream out;
    private RequestBody body;

    Exchange(Request request, Response response, Map<String, String> pathParams, ApiLimits limits,
             UnfinishedRequests unfinished) {
        this.request = request;
        this.response = response;
        this.pathParams = pathParams;
        this.limits = limits;
        this.unfinished = unfinished;
    }

    public String path(String name) {
        return pathParams.get(name);
    }

    public String query(String name) {
        if (query == null) {
            query = Request.extractQueryParameters(request, StandardCharsets.UTF_8);
        }
        return query.getValue(name);
    }

    public List<String> queryAll(String name) {
        query(name);
        return query.getValues(name);
    }

    public String query(String name, String fallback) {
        String v = query(name);
        return v == null ? fallback : v;
    }

    public boolean flag(String name) {
        String v = query(name);
        return v != null && (v.equals("1") || v.equalsIgnoreCase("true"));
    }

    public int intQuery(String name, int fallback) {
        return Math.toIntExact(Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, longQuery(name, fallback))));
    }

    public long longQuery(String name, long fallback) {
        String v = query(name);
        if (v == null || v.isEmpty()) {
            return fallback;
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw KilnException.invalid("query parameter " + name + "=" + v + " is not a number");
        }
    }

    public String header(String name) {
        return request.getHeaders().get(name);
    }

    /** The body as {@code type}, read strictly (see {@link JsonBody}): a wrong type is a 400 naming the field. */
    public <T> T body(Class<T> type) {
        try (InputStream in = body()) {
            T value = JsonBody.read(in, type);
            if (value == null) {
                throw KilnException.invalid("the request body must be a JSON object");
            }
            return value;
        } catch (IOException e) {
            // a client gone mid-body (or a daemon stopping) fails the read with no message at all
            String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            throw KilnException.invalid("invalid JSON request body: " + why.lines().findFirst().orElse(""));
        }
    }

    /** The request body, which the client must send in time (see {@link RequestBody}). */
    public InputStream body() {
        return body(false);
    }

    /**
     * The request body as a stream the client writes as it goes, for as long as it wants (a person typing into a
     * process's stdin): no deadline, and not counted among its peer's unfinished requests.
     */
    public InputStream streamedBody() {
        return body(true);
    }

    private InputStream body(boolean streamed) {
        if (body == null) {
            body = new RequestBody(request, limits, unfinished, streamed);
        }
        return body;
    }

    /** Why the body was refused for its client (stalled, too many from its peer), or null. */
    RefusedRequest refusal() {
        return body == null ? null : body.refused();
    }

    /**
     * Reads and drops what is left of the request body, up to {@code limit} bytes, before an early answer (an error,
     * a refusal): a client still writing its body would otherwise get a broken pipe instead of the answer when the
     * connection closes under it. Beyond the limit the connection is closed anyway.
     */
    public void discardBody(long limit) {
        long contentLength = request.getLength();
        if (contentLength == 0 || refusal() != null) {
            return;
        }
        try {
            InputStream in = body();
            byte[] buf = new byte[8192];
            long left = limit;
            for (int n; left > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, left))) > 0; ) {
                left -= n;
            }
        } catch (IOException | RuntimeException e) {
            // the client went away or sent garbage: the answer below may still reach it
        }
    }

    public void status(int code) {
        response.setStatus(code);
    }

    public void contentType(String type) {
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, type);
    }

    public void header(String name, String value) {
        response.getHeaders().put(name, value);
    }

    /** The response body; the first call commits status and headers. */
    public OutputStream out() {
        if (out == null) {
            out = Content.Sink.asOutputStream(response);
        }
        return out;
    }

    public void json(int status, Object value) {
        try {
            byte[] bytes = JSON.writeValueAsBytes(value);
            status(status);
            contentType("application/json");
            response.getHeaders().put(HttpHeader.CONTENT_LENGTH, bytes.length);
            out().write(bytes);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    public void json(Object value) {
        json(200, value);
    }

    public void noContent() {
        status(204);
    }

    boolean committed() {
        return response.isCommitted();
    }

    void finish() throws IOException {
        if (out != null) {
            out.close();
        }
    }

    /** The body's place among its peer's unfinished requests is given back; the connection closes if it is unread. */
    void releaseBody() {
        if (body != null) {
            body.close();
        }
    }

    public Request request() {
        return request;
    }

    public Response response() {
        return response;
    }
}
