package dev.kiln.build;

import dev.kiln.KilnException;
import dev.kiln.engine.Engine;
import dev.kiln.engine.Sandbox;
import dev.kiln.engine.SandboxConfig;
import dev.kiln.engine.Sandboxes;
import dev.kiln.image.Image;
import dev.kiln.image.ImageRef;
import dev.kiln.isolation.LogReader;
import dev.kiln.isolation.SandboxTask;

import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;

/**
 * A RUN step: a sandbox of the build's isolation made from the step's parent image through the engine, like any
 * {@code kiln run} (the image's env, user, working directory; the step's args as env; the build's network), its
 * output passed on line by line, its changes committed as the step's layer, and the sandbox removed whatever
 * happened. A failed command leaves nothing: no sandbox, no mount, no layer.
 */
final class RunStep {
    /** The label that marks a build's sandboxes (Docker's classic builder marks its intermediate containers too). */
    static final String LABEL = "dev.kiln.build";

    private RunStep() {
    }

    /**
     * Runs {@code cmd} in a sandbox of {@code parent} and returns the child image named {@code name}. {@code env}
     * adds to the image's env (the step's ARGs); the config of the child is {@code next}.
     */
    static Image run(Engine engine, ImageState state, Image parent, List<String> cmd, List<String> env,
                     BuildOptions options, Consumer<String> output, com.fasterxml.jackson.databind.node.ObjectNode next,
                     String createdBy, ImageRef name, String where) {
        Sandboxes sandboxes = engine.sandboxes();
        String sandboxName = "kiln-build-" + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
        Sandbox s = sandboxes.create(new SandboxConfig(parent.id().toString(), sandboxName, cmd, List.of(), env,
                null, null, null, options.isolation(), null, 0, 0, 0, false, Map.of(LABEL, "1"), false, false, false,
                null, null, options.network(), false, null, null, null, null, null, 0));
        try {
            output.accept(" ---> Running in " + s.shortId() + "\n");
            SandboxTask task = sandboxes.start(s.id(), false);
            new LogReader(sandboxes.logFile(s)).follow(r -> output.accept(r.text()), task::ended);
            int code = sandboxes.await(s.id(), Duration.ofDays(1));
            if (code != 0) {
                throw KilnException.invalid(where + ": The command '" + String.join(" ", cmd)
                        + "' returned a non-zero code: " + code);
            }
            return sandboxes.withChanges(s.id(), upper -> state.child(engine.images(), next, upper, true, createdBy, null,
                    name));
        } finally {
            try {
                sandboxes.remove(s.id(), true);
                output.accept(" ---> Removed intermediate container " + s.shortId() + "\n");
            } catch (KilnException e) {
                output.accept(" ---> cannot remove intermediate sandbox " + s.shortId() + ": " + e.getMessage()
                        + "\n");
            }
        }
    }
}
