package dev.kiln.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A sandbox created by kiln before its engine had a record of its own (schema version 2, commit 67471d7) is inspected
 * and started by today's kilnd after the upgrade: the first open of the database rewrites its row. The row is put in
 * the old shape by hand while kilnd is down, with the JSON that kiln wrote for the same command (copied from its
 * database), so the sandbox's directory and image are real.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class DatabaseUpgradeTest extends DaemonProcessTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** What kiln 67471d7 stored for {@code kiln create} with the arguments of {@link #CREATE}. */
    private static final String OLD_ROW = """
            {"request":{"image":"reliability/busybox:1","name":"before","cmd":["sh","-c",\
            "echo hi $FOO from $(hostname) as $(id -u)"],"env":["FOO=bar"],"user":"app","hostname":"h1",\
            "nanoCpus":0,"memory":0,"pidsLimit":0,"readOnly":false,"labels":{"a":"b"},"tty":false,\
            "openStdin":false,"autoRemove":false,"network":"none","publishAll":false,"diskSize":0},\
            "process":{"args":["sh","-c","echo hi $FOO from $(hostname) as $(id -u)"],"env":["PATH=/usr/local/sbin:\
            /usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HOSTNAME=h1","FOO=bar","HOME=/home/app"],"cwd":"/",\
            "uid":1000,"gid":1000,"additionalGids":[1000,2000],"tty":false,"stdin":false}}""";
    private static final String[] CREATE = {"create", "--name", "before", "--hostname", "h1", "-u", "app", "-e",
            "FOO=bar", "--label", "a=b", "--network", "none", BusyboxImage.REF, "sh", "-c",
            "echo hi $FOO from $(hostname) as $(id -u)"};

    @Test
    void aSandboxCreatedBeforeTheUpgradeIsInspectedAndStartedAfterIt() throws Exception {
        busybox();
        kiln.ok(CREATE);
        kilnd.stop();
        String url = "jdbc:sqlite:" + root.resolve("kiln.db");
        try (Connection db = DriverManager.getConnection(url)) {
            JsonNode now = JSON.readTree(config(db));
            JsonNode old = JSON.readTree(OLD_ROW);
            // the old row fits this sandbox: the same image and command resolve to the same process
            assertThat(now.get("process")).isEqualTo(old.get("process"));
            try (PreparedStatement ps = db.prepareStatement("UPDATE sandboxes SET config = ? WHERE name = 'before'")) {
                ps.setString(1, OLD_ROW);
                assertThat(ps.executeUpdate()).isEqualTo(1);
            }
            try (Statement s = db.createStatement()) {
                s.execute("PRAGMA user_version = 2");
            }
        }

        kilnd.restart();

        try (Connection db = DriverManager.getConnection(url); Statement s = db.createStatement();
             ResultSet rs = s.executeQuery("PRAGMA user_version")) {
            assertThat(rs.getInt(1)).as("schema version after the upgrade").isEqualTo(4);
            JsonNode stored = JSON.readTree(config(db));
            assertThat(stored.has("request")).isFalse();
            assertThat(stored.get("config")).isEqualTo(JSON.readTree(OLD_ROW).get("request"));
        }
        JsonNode inspect = JSON.readTree(kiln.ok("inspect", "before").out());
        inspect = inspect.isArray() ? inspect.get(0) : inspect;
        assertThat(inspect.at("/Config/Hostname").asText()).isEqualTo("h1");
        assertThat(inspect.at("/Config/User").asText()).isEqualTo("app");
        assertThat(inspect.at("/Config/Labels/a").asText()).isEqualTo("b");
        assertThat(inspect.at("/Config/Env").toString()).contains("\"FOO=bar\"");
        assertThat(inspect.at("/HostConfig/NetworkMode").asText()).isEqualTo("none");
        assertThat(inspect.at("/State/Status").asText()).isEqualTo("created");

        JsonNode docker = RawHttp.request(kilnd.socket(), "GET", "/containers/before/json", null).json();
        assertThat(docker.at("/Config/Cmd").toString())
                .isEqualTo("[\"sh\",\"-c\",\"echo hi $FOO from $(hostname) as $(id -u)\"]");
        assertThat(docker.at("/Config/Labels/a").asText()).isEqualTo("b");
        assertThat(docker.at("/HostConfig/NetworkMode").asText()).isEqualTo("none");

        KilnCli.Result run = kiln.process(Duration.ofSeconds(60), "start", "-a", "before");
        assertThat(run.exitCode()).as(run.toString()).isZero();
        assertThat(run.out()).isEqualTo("hi bar from h1 as 1000\n");
        kiln.ok("rm", "before");
    }

    private static String config(Connection db) throws Exception {
        try (Statement s = db.createStatement();
             ResultSet rs = s.executeQuery("SELECT config FROM sandboxes WHERE name = 'before'")) {
            assertThat(rs.next()).as("the sandbox's row").isTrue();
            return rs.getString(1);
        }
    }
}
