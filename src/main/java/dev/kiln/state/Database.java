package dev.kiln.state;

import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import org.sqlite.SQLiteErrorCode;
import org.sqlite.SQLiteException;
import java.util.ArrayList;
import java.util.List;

/**
 * kiln's SQLite database ({@code ROOT/kiln.db}): WAL mode so readers never block the one writer, a busy timeout so
 * two kiln processes wait for each other instead of failing, and schema versions applied in order on open.
 */
public final class Database implements AutoCloseable {

    /** Schema steps; append only. Index i brings the schema to user_version i+1. */
    private static final List<String> MIGRATIONS = List.of(
            """
            CREATE TABLE images (
              name TEXT PRIMARY KEY,          -- normalised reference, e.g. docker.io/library/busybox:latest
              manifest_digest TEXT NOT NULL,  -- the platform manifest this name points at
              repo_digest TEXT,               -- what the registry called it (index or manifest), if pulled
              image_id TEXT NOT NULL,         -- the config digest (Docker's image ID)
              size INTEGER NOT NULL,          -- compressed size: config + layers
              created TEXT,                   -- the image config's creation time
              added INTEGER NOT NULL          -- when it came to this store (epoch ms)
            );
            CREATE INDEX images_by_id ON images(image_id);
            """,
            """
            CREATE TABLE sandboxes (
              id TEXT PRIMARY KEY,            -- 64 hex characters
              name TEXT NOT NULL UNIQUE,      -- unique: two concurrent creates with one name cannot both win
              image TEXT NOT NULL,            -- the reference the user gave
              image_id TEXT NOT NULL,
              isolation TEXT NOT NULL,
              state TEXT NOT NULL,            -- created | running | exited | removing
              config TEXT NOT NULL,           -- JSON: the create request and the resolved process
              created INTEGER NOT NULL,       -- epoch ms
              started INTEGER,
              finished INTEGER,
              exit_code INTEGER,
              oom INTEGER NOT NULL DEFAULT 0,
              shim_pid INTEGER,
              restarts INTEGER NOT NULL DEFAULT 0
            );
            CREATE TABLE execs (
              id TEXT PRIMARY KEY,
              sandbox_id TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
              config TEXT NOT NULL,
              shim_pid INTEGER,
              exit_code INTEGER
            );
            """,
            // The sandboxes' config holds the engine's own record (engine.SandboxConfig) instead of the /v1 wire
            // record it was created from. Before: {"request": api.v1.CreateRequest, "process": ProcessSpec}; after:
            // {"config": SandboxConfig, "process": ProcessSpec}. SandboxConfig began as CreateRequest's fields with
            // their names and meaning, so the request moves across as it is; later changes of its shape are steps
            // after this one. A Docker-created sandbox was stored in the same shape (its face made a CreateRequest).
            """
            UPDATE sandboxes SET config = json_object('config', config -> '$.request', 'process', config -> '$.process')
              WHERE json_type(config, '$.request') = 'object';
            """,
            // Execs live in the daemon's memory (engine.Execs), as Docker's do: a daemon restart forgets them, and
            // they end with their sandbox. The table step 2 made for them was never written or read.
            """
            DROP TABLE IF EXISTS execs;
            """);

    private final Connection connection;
    private final SpaceReserve reserve;

    private Database(Connection connection, SpaceReserve reserve) {
        this.connection = connection;
        this.reserve = reserve;
    }

    public static Database open(Path root) {
        try {
            Files.createDirectories(root, OwnerOnly.DIRECTORY);
            Path file = root.resolve("kiln.db");
            ownerOnly(file);
            Connection c = DriverManager.getConnection("jdbc:sqlite:" + file);
            try (Statement s = c.createStatement()) {
                s.execute("PRAGMA busy_timeout = 10000");
                s.execute("PRAGMA journal_mode = WAL");
                s.execute("PRAGMA foreign_keys = ON");
                s.execute("PRAGMA synchronous = NORMAL");
            }
            Database db = new Database(c, new SpaceReserve(root.resolve("kiln.db-reserve")));
            db.migrate();
            db.reserve.restore();
            return db;
        } catch (Exception e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE,
                    "cannot open kiln's database under " + root + ": " + e.getMessage(), e);
        }
    }

    /**
     * The database holds every sandbox's environment (passwords among them): 0600. SQLite creates the -wal and -shm
     * files with the database file's mode, so the file is made 0600 before SQLite first opens it; an older kiln's
     * 0644 files (the -wal and -shm too, left by a crash) are tightened here.
     */
    private static void ownerOnly(Path file) throws IOException {
        try {
            Files.createFile(file, OwnerOnly.FILE);
        } catch (FileAlreadyExistsException e) {
            // an existing database, tightened below
        }
        for (String suffix : List.of("", "-wal", "-shm", "-journal")) {
            try {
                Files.setPosixFilePermissions(file.resolveSibling(file.getFileName() + suffix), OwnerOnly.FILE_MODE);
            } catch (NoSuchFileException absent) {
                // none (or its last user just removed it)
            }
        }
    }

    private void migrate() throws SQLException {
        int version;
        try (Statement s = connection.createStatement(); var rs = s.executeQuery("PRAGMA user_version")) {
            version = rs.getInt(1);
        }
        if (version > MIGRATIONS.size()) {
            // a newer kiln's rows would be misread, and this kiln's writes would mix two shapes
            throw new SQLException("schema version " + version + " is newer than this kiln knows ("
                    + MIGRATIONS.size() + "): the database was written by a newer kiln (run that version)");
        }
        for (int i = version; i < MIGRATIONS.size(); i++) {
            connection.setAutoCommit(false);
            try (Statement s = connection.createStatement()) {
                for (String sql : MIGRATIONS.get(i).split(";\\s*\\n")) {
                    if (!sql.isBlank()) {
                        s.execute(sql);
                    }
                }
                s.execute("PRAGMA user_version = " + (i + 1));
                connection.commit();
            } catch (SQLException e) {
                connection.rollback();
                throw e;
            } finally {
                connection.setAutoCommit(true);
            }
        }
    }

    public Connection connection() {
        return connection;
    }

    /** Maps one result row; may throw what reading it throws. */
    public interface Row<T> {
        T map(ResultSet rs) throws Exception;
    }

    /** Runs an INSERT/UPDATE/DELETE; returns the rows changed. */
    public int update(String sql, Object... args) throws SQLException {
        reserve.restore(); // before ordinary writes take the room it needs
        return execute(sql, args);
    }

    /**
     * An {@link #update} kiln must be able to make on a full disk because it frees space or records what already
     * happened: an untag, a sandbox's removal, its exit. Every SQLite write needs new room in the WAL first, so on a
     * full disk kiln could not even delete; when this one fails with SQLITE_FULL, the {@link SpaceReserve} is given
     * up and the write tried once more.
     */
    public int essential(String sql, Object... args) throws SQLException {
        try {
            return execute(sql, args);
        } catch (SQLException e) {
            if (!(e instanceof SQLiteException full && full.getResultCode() == SQLiteErrorCode.SQLITE_FULL)
                    || !reserve.release()) {
                throw e;
            }
            return execute(sql, args);
        }
    }

    /** Takes the reserve back if it was given up and there is room for it again: call after freeing space. */
    public void restoreReserve() {
        reserve.restore();
    }

    private int execute(String sql, Object... args) throws SQLException {
        try (PreparedStatement ps = prepare(sql, args)) {
            return ps.executeUpdate();
        }
    }

    public <T> List<T> query(String sql, Row<T> row, Object... args) {
        try (PreparedStatement ps = prepare(sql, args); ResultSet rs = ps.executeQuery()) {
            List<T> out = new ArrayList<>();
            while (rs.next()) {
                out.add(row.map(rs));
            }
            return out;
        } catch (Exception e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "database query failed: " + e.getMessage(), e);
        }
    }

    private PreparedStatement prepare(String sql, Object... args) throws SQLException {
        PreparedStatement ps = connection.prepareStatement(sql);
        for (int i = 0; i < args.length; i++) {
            ps.setObject(i + 1, args[i]);
        }
        return ps;
    }

    @Override
    public void close() {
        try {
            connection.close();
        } catch (SQLException ignored) {
            // closing a read-only or already-broken connection: nothing left to save
        }
    }
}
