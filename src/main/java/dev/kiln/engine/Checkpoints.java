package dev.kiln.engine;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;
import dev.kiln.isolation.Isolator;
import dev.kiln.isolation.Isolators;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.SandboxTask;
import dev.kiln.rootfs.Trees;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Checkpoints of running sandboxes, Docker's {@code checkpoint create/ls/rm} and {@code start --checkpoint}
 * (docs/checkpoint.md): each one a directory {@code SANDBOX_DIR/checkpoints/NAME/} that the sandbox's isolator fills
 * ({@link Isolator#checkpoint}) and restores from ({@link Isolator#restore}), with a {@code checkpoint.json} of kiln's
 * beside. Made in {@code .NAME.tmp} and renamed, so a failed or interrupted checkpoint never lists; removed with the
 * sandbox.
 */
public final class Checkpoints {
    /** Docker's rule for checkpoint names (its RestrictedNamePattern): no path can be made of one. */
    private static final Pattern NAME = Pattern.compile("[a-zA-Z0-9][a-zA-Z0-9_.-]+");
    private static final String RECORD = "checkpoint.json";

    private final Sandboxes sandboxes;
    private final Isolators isolators;
    private final Consumer<Sandbox> stoppedByUser;
    private final Events events;

    Checkpoints(Sandboxes sandboxes, Isolators isolators, Consumer<Sandbox> stoppedByUser, Events events) {
        this.sandboxes = sandboxes;
        this.isolators = isolators;
        this.stoppedByUser = stoppedByUser;
        this.events = events;
    }

    /** One checkpoint as {@code ls} shows it. */
    public record Checkpoint(String name, Instant created) {}

    /**
     * Saves the running sandbox as checkpoint {@code name}; without {@code leaveRunning} its run ends (as a stop: its
     * restart policy leaves it alone) and this returns once the exit is recorded.
     */
    public void create(String ref, String name, boolean leaveRunning) {
        Sandbox s = sandboxes.get(ref);
        checkName(name);
        SandboxTask task;
        synchronized (sandboxes.lock(s.id())) {
            s = sandboxes.get(s.id());
            if (!s.running()) {
                throw KilnException.conflict("sandbox " + s.name() + " is not running (a checkpoint is made of a "
                        + "running sandbox)");
            }
            if (s.paused()) {
                throw KilnException.conflict("sandbox " + s.name() + " is paused: unpause it before a checkpoint");
            }
            if (s.process().tty()) { // Docker's rule too: a terminal's state is the host's, not the sandbox's
                throw KilnException.invalid("checkpoints are not supported for sandboxes with a terminal (-t)");
            }
            Path root = root(sandboxes.dir(s));
            Path dir = root.resolve(name);
            if (Files.exists(dir)) {
                throw KilnException.conflict("checkpoint with name " + name + " already exists for sandbox "
                        + s.name());
            }
            Path tmp = root.resolve("." + name + ".tmp");
            task = sandboxes.task(s);
            Isolator isolator = isolators.named(s.isolation());
            SandboxSpec spec = sandboxes.spec(s);
            try {
                Files.createDirectories(root, OwnerOnly.DIRECTORY);
                Trees.delete(tmp); // one a crash left
                Files.createDirectory(tmp, OwnerOnly.DIRECTORY);
                if (!leaveRunning) stoppedByUser.accept(s); // its exit must not be taken for a failure to restart
                isolator.checkpoint(spec, task, tmp, leaveRunning);
                Files.writeString(tmp.resolve(RECORD), "{\"Name\":\"" + name + "\",\"Isolation\":\""
                        + s.isolation() + "\",\"Created\":\"" + Instant.now() + "\"}\n", StandardCharsets.UTF_8);
                Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot checkpoint sandbox " + s.name() + ": "
                        + e.getMessage(), e);
            } finally {
                if (Files.exists(tmp)) Trees.delete(tmp);
            }
            events.emit(s, "checkpoint");
        }
        if (!leaveRunning) { // outside the lock: the exit's watcher records under it
            sandboxes.awaitEnd(s, task, Duration.ofSeconds(30));
            sandboxes.awaitRecorded(s.id(), Duration.ofSeconds(10));
        }
    }

    /** The sandbox's checkpoints, oldest first. */
    public List<Checkpoint> list(String ref) {
        Sandbox s = sandboxes.get(ref);
        Path root = root(sandboxes.dir(s));
        List<Checkpoint> out = new ArrayList<>();
        if (!Files.isDirectory(root)) return out;
        try (Stream<Path> dirs = Files.list(root)) {
            for (Path d : dirs.filter(d -> !d.getFileName().toString().startsWith(".")
                    && Files.isRegularFile(d.resolve(RECORD))).toList()) {
                FileTime t = Files.getLastModifiedTime(d.resolve(RECORD));
                out.add(new Checkpoint(d.getFileName().toString(), t.toInstant()));
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot list the checkpoints of " + s.name() + ": "
                    + e.getMessage(), e);
        }
        out.sort(Comparator.comparing(Checkpoint::created).thenComparing(Checkpoint::name));
        return out;
    }

    public void remove(String ref, String name) {
        Sandbox s = sandboxes.get(ref);
        synchronized (sandboxes.lock(s.id())) { // not while a start restores it
            Trees.delete(existing(s, sandboxes.dir(s), name));
        }
    }

    /** The directory of the sandbox's checkpoint {@code name}; a bad or unknown name is refused with one line. */
    static Path existing(Sandbox s, Path sandboxDir, String name) {
        checkName(name);
        Path dir = root(sandboxDir).resolve(name);
        if (!Files.isRegularFile(dir.resolve(RECORD))) {
            throw KilnException.notFound("checkpoint " + name + " does not exist for sandbox " + s.name()
                    + " (kiln checkpoint ls " + s.name() + " lists them)");
        }
        return dir;
    }

    private static void checkName(String name) {
        if (name == null || !NAME.matcher(name).matches()) {
            throw KilnException.invalid("invalid checkpoint name " + KilnException.quote(String.valueOf(name))
                    + ": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        }
    }

    private static Path root(Path sandboxDir) {
        return sandboxDir.resolve("checkpoints");
    }
}
