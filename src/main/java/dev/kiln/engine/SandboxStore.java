package dev.kiln.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.state.Database;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.sql.SQLException;
import java.util.List;
import java.util.Optional;

/**
 * Sandbox rows in SQLite. Every state change is one UPDATE guarded by the state it expects. The {@code config}
 * column holds {@code {"config": SandboxConfig, "process": ProcessSpec}}; rows of an older shape are rewritten by
 * {@code Database}'s schema steps when the database is opened.
 */
final class SandboxStore {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Database db;

    SandboxStore(Database db) {
        this.db = db;
    }

    void insert(Sandbox s) {
        ObjectNode config = JSON.createObjectNode();
        config.set("config", JSON.valueToTree(s.config()));
        config.set("process", JSON.valueToTree(s.process()));
        try {
            update("INSERT INTO sandboxes(id, name, image, image_id, isolation, state, config, created) "
                            + "VALUES (?,?,?,?,?,?,?,?)",
                    s.id(), s.name(), s.image(), s.imageId(), s.isolation(), s.state().wire(),
                    JSON.writeValueAsString(config), s.created());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    List<Sandbox> all() {
        return query("SELECT * FROM sandboxes ORDER BY created DESC");
    }

    Optional<Sandbox> byId(String id) {
        return query("SELECT * FROM sandboxes WHERE id = ?", id).stream().findFirst();
    }

    /** Docker's lookup order: full ID, exact name, then a unique ID prefix. */
    Sandbox find(String ref) {
        String name = ref.startsWith("/") ? ref.substring(1) : ref;
        List<Sandbox> hits = query("SELECT * FROM sandboxes WHERE id = ? OR name = ?", ref, name);
        if (hits.isEmpty() && ref.matches("[a-f0-9]{1,64}")) {
            hits = query("SELECT * FROM sandboxes WHERE id LIKE ?", ref + "%");
            if (hits.size() > 1) {
                throw KilnException.invalid("multiple sandboxes match ID prefix \"" + ref + "\" (give more characters)");
            }
        }
        if (hits.isEmpty()) {
            throw KilnException.notFound("no such sandbox: " + ref);
        }
        return hits.getFirst();
    }

    boolean started(String id, long shimPid, long when) {
        return update("UPDATE sandboxes SET state = 'running', shim_pid = ?, started = ?, finished = NULL, "
                + "exit_code = NULL, oom = 0 WHERE id = ? AND state IN ('created','exited')", shimPid, when, id) == 1;
    }

    /** Essential ({@link Database#essential}): an exit is recorded on a full disk too, or ps would show it running. */
    boolean exited(String id, int exitCode, boolean oom, long when) {
        return essential("UPDATE sandboxes SET state = 'exited', exit_code = ?, oom = ?, finished = ? "
                + "WHERE id = ? AND state IN ('running','paused')", exitCode, oom ? 1 : 0, when, id) == 1;
    }

    /** Marks a running sandbox paused, or a paused one running again; false if it was in neither state asked. */
    boolean paused(String id, boolean paused) {
        return essential("UPDATE sandboxes SET state = ? WHERE id = ? AND state = ?", paused ? "paused" : "running",
                id, paused ? "running" : "paused") == 1;
    }

    /** Claims the sandbox for removal; false if someone else is already removing it. */
    boolean markRemoving(String id) {
        return essential("UPDATE sandboxes SET state = 'removing' WHERE id = ? AND state != 'removing'", id) == 1;
    }

    void delete(String id) {
        essential("DELETE FROM sandboxes WHERE id = ?", id);
    }

    /** Rewrites the sandbox's config ({@code update}); its process stays as it resolved at create. */
    void config(String id, SandboxConfig config, ProcessSpec process) {
        ObjectNode node = JSON.createObjectNode();
        node.set("config", JSON.valueToTree(config));
        node.set("process", JSON.valueToTree(process));
        try {
            update("UPDATE sandboxes SET config = ? WHERE id = ?", JSON.writeValueAsString(node), id);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    void rename(String id, String name) {
        update("UPDATE sandboxes SET name = ? WHERE id = ?", name, id);
    }

    void countRestart(String id) {
        update("UPDATE sandboxes SET restarts = restarts + 1 WHERE id = ?", id);
    }

    /** A removal's or an exit's write: it must succeed on a full disk too ({@link Database#essential}). */
    private int essential(String sql, Object... args) {
        try {
            return db.essential(sql, args);
        } catch (SQLException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "database update failed: " + e.getMessage(), e);
        }
    }

    private int update(String sql, Object... args) {
        try {
            return db.update(sql, args);
        } catch (SQLException e) {
            if (e.getMessage() != null && e.getMessage().contains("UNIQUE constraint failed: sandboxes.name")) {
                throw KilnException.conflict("the name \"" + args[1] + "\" is already in use by another sandbox "
                        + "(remove or rename that sandbox, or pick another name)");
            }
            throw new KilnException(KilnException.Kind.INTERNAL, "database update failed: " + e.getMessage(), e);
        }
    }

    private List<Sandbox> query(String sql, Object... args) {
        return db.query(sql, rs -> {
            JsonNode config = JSON.readTree(rs.getString("config"));
            if (!config.path("config").isObject() || !config.path("process").isObject()) {
                throw new IllegalStateException("sandbox " + rs.getString("id")
                        + " has a config of an unknown shape");
            }
            int exit = rs.getInt("exit_code");
            Integer exitCode = rs.wasNull() ? null : exit;
            return new Sandbox(rs.getString("id"), rs.getString("name"), rs.getString("image"),
                    rs.getString("image_id"), rs.getString("isolation"), SandboxState.of(rs.getString("state")),
                    JSON.treeToValue(config.get("config"), SandboxConfig.class),
                    JSON.treeToValue(config.get("process"), ProcessSpec.class),
                    rs.getLong("created"), rs.getLong("started"), rs.getLong("finished"), exitCode,
                    rs.getInt("oom") != 0, rs.getLong("shim_pid"), rs.getInt("restarts"));
        }, args);
    }
}
