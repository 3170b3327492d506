package dev.kiln.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import dev.kiln.KilnException;
import dev.kiln.engine.Engine;
import dev.kiln.engine.SandboxFiles;

import java.util.Base64;

/**
 * Copying files in and out of a sandbox ({@code kiln cp}, {@code docker cp}): {@code GET} a tar of a path,
 * {@code HEAD} its stat only, {@code PUT} a tar into a directory. kiln's route is
 * {@code /v1/sandboxes/{id}/archive}; the Docker face's {@code /containers/{id}/archive} calls the same handlers, so
 * both speak Docker's protocol: {@code path=}, {@code noOverwriteDirNonDir=}, {@code copyUIDGID=} and the stat in
 * the {@code X-Docker-Container-Path-Stat} header (base64 of {@code {name,size,mode,mtime,linkTarget}}).
 */
public final class ArchiveRoutes {
    /** Docker's header for the stat of the path an archive GET or HEAD names. */
    public static final String STAT_HEADER = "X-Docker-Container-Path-Stat";

    private ArchiveRoutes() {
    }

    public static void register(Router r, Engine engine) {
        r.add("GET", "/v1/sandboxes/{id}/archive", x -> get(x, engine, engine.sandboxes().get(x.path("id")).id()));
        r.add("PUT", "/v1/sandboxes/{id}/archive", x -> put(x, engine, engine.sandboxes().get(x.path("id")).id()));
    }

    /** GET (the tar) and HEAD (the stat alone) of {@code path=} in sandbox {@code id}. */
    public static void get(Exchange x, Engine engine, String id) {
        String path = requiredPath(x);
        SandboxFiles files = engine.files();
        if (x.request().getMethod().equals("HEAD")) {
            statHeader(x, files.stat(id, path));
            x.status(200);
            return;
        }
        files.archive(id, path, stat -> {
            statHeader(x, stat);
            x.status(200);
            x.contentType("application/x-tar");
        }, x.out());
    }

    /** PUT: the request body (a tar) extracted into directory {@code path=} of sandbox {@code id}. */
    public static void put(Exchange x, Engine engine, String id) {
        String path = requiredPath(x);
        engine.files().extract(id, path, x.body(), x.flag("noOverwriteDirNonDir"), x.flag("copyUIDGID"));
        x.status(200);
    }

    private static String requiredPath(Exchange x) {
        String path = x.query("path");
        if (path == null || path.isEmpty()) {
            throw KilnException.invalid("path is required (the path inside the sandbox, e.g. path=/etc/hostname)");
        }
        return path;
    }

    private static void statHeader(Exchange x, SandboxFiles.PathStat stat) {
        try {
            x.header(STAT_HEADER, Base64.getEncoder().encodeToString(Exchange.JSON.writeValueAsBytes(stat)));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
