package dev.kiln.api;

import dev.kiln.KilnException;
import dev.kiln.api.v1.AuditRequest;
import dev.kiln.audit.Audit;
import dev.kiln.engine.Engine;

import java.nio.file.Path;
import java.time.Duration;

/** {@code POST /v1/audit}: runs the workload under each isolation asked for and answers the report (docs/security.md). */
public final class AuditRoutes {
    private AuditRoutes() {
    }

    public static void register(Router r, Engine engine, Path runRoot) {
        Audit audit = new Audit(engine, runRoot);
        r.add("POST", "/v1/audit", x -> {
            AuditRequest req = x.body(AuditRequest.class);
            if (req.image() == null || req.image().isBlank()) {
                throw KilnException.invalid("audit needs an image");
            }
            Duration window = req.windowSeconds() == 0 ? Audit.DEFAULT_WINDOW
                    : Duration.ofSeconds(req.windowSeconds());
            x.json(audit.run(req.image(), req.cmd() == null || req.cmd().isEmpty() ? null : req.cmd(),
                    req.isolation(), window));
        });
    }
}
