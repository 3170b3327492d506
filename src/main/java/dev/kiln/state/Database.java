package dev.kiln.state;

import dev.kiln.KilnException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
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
            """);

    private final Connection connection;

    private Database(Connection connection) {
        this.connection = connection;
    }

    public static Database open(Path root) {
        try {
            Files.createDirectories(root);
            Connection c = DriverManager.getConnection("jdbc:sqlite:" + root.resolve("kiln.db"));
            try (Statement s = c.createStatement()) {
                s.execute("PRAGMA busy_timeout = 10000");
                s.execute("PRAGMA journal_mode = WAL");
                s.execute("PRAGMA foreign_keys = ON");
                s.execute("PRAGMA synchronous = NORMAL");
            }
            Database db = new Database(c);
            db.migrate();
            return db;
        } catch (Exception e) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE,
                    "cannot open kiln's database under " + root + ": " + e.getMessage(), e);
        }
    }

    private void migrate() throws SQLException {
        int version;
        try (Statement s = connection.createStatement(); var rs = s.executeQuery("PRAGMA user_version")) {
            version = rs.getInt(1);
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

    @Override
    public void close() {
        try {
            connection.close();
        } catch (SQLException ignored) {
            // closing a read-only or already-broken connection: nothing left to save
        }
    }
}
