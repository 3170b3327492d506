package dev.kiln.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.state.Database;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.sql.Statement;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A database written by kiln before the engine had its own sandbox record (schema version 2, commit 67471d7) is
 * read back by today's kiln: its sandboxes' config rows are rewritten once, when the database is opened. The old
 * rows below are the JSON that kiln wrote, copied as it was from its database: {@code kiln create} (/v1) and
 * {@code docker create} (the Docker face) with the flags named in each.
 */
class SandboxStoreMigrationTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String IMAGE_ID = "sha256:576dd11a083f879ef02b9216f35dcf82e06b8c848f59989dfc1084d1538e8b86";
    private static final String PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /**
     * {@code kiln create --name v1-full -e FOO=bar -e EMPTY= -w /tmp -u 0 --hostname h1 --label a=b --label c=
     * --memory 64m --cpus 0.5 --pids-limit 50 --read-only --dns 1.1.1.1 --dns-search example.com --dns-option ndots:2
     * --add-host foo:10.0.0.1 -p 8080:80 -p 9090/udp --entrypoint "" old/busybox:1 sh -c 'echo hi $FOO'}
     */
    private static final String V1_FULL = """
            {"request":{"image":"old/busybox:1","name":"v1-full","cmd":["sh","-c","echo hi $FOO"],"entrypoint":[],\
            "env":["FOO=bar","EMPTY="],"workdir":"/tmp","user":"0","hostname":"h1","nanoCpus":500000000,\
            "memory":67108864,"pidsLimit":50,"readOnly":true,"labels":{"a":"b","c":""},"tty":false,\
            "openStdin":false,"autoRemove":false,"publish":["8080:80","9090/udp"],"publishAll":false,\
            "dns":["1.1.1.1"],"dnsSearch":["example.com"],"dnsOptions":["ndots:2"],"extraHosts":["foo:10.0.0.1"],\
            "diskSize":0},"process":{"args":["sh","-c","echo hi $FOO"],"env":["PATH=/usr/local/sbin:/usr/local/bin:\
            /usr/sbin:/usr/bin:/sbin:/bin","HOSTNAME=h1","FOO=bar","EMPTY=","HOME=/root"],"cwd":"/tmp","uid":0,\
            "gid":0,"additionalGids":[0],"tty":false,"stdin":false}}""";

    /** {@code kiln create --name v1-none --network none -t -i --rm old/busybox:1 echo x}. */
    private static final String V1_NONE = """
            {"request":{"image":"old/busybox:1","name":"v1-none","cmd":["echo","x"],"env":[],"nanoCpus":0,\
            "memory":0,"pidsLimit":0,"readOnly":false,"labels":{},"tty":true,"openStdin":true,"autoRemove":true,\
            "network":"none","publishAll":false,"diskSize":0},"process":{"args":["echo","x"],"env":["PATH=/usr/\
            local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HOSTNAME=b963db27b633","TERM=xterm",\
            "HOME=/root"],"cwd":"/","uid":0,"gid":0,"additionalGids":[0],"tty":true,"stdin":true}}""";

    /** {@code kiln create --name v1-vm --isolation vm --disk-size 128m --kernel K --network user -P old/busybox:1 echo vm}. */
    private static final String V1_VM = """
            {"request":{"image":"old/busybox:1","name":"v1-vm","cmd":["echo","vm"],"env":[],"isolation":"vm",\
            "nanoCpus":0,"memory":0,"pidsLimit":0,"readOnly":false,"labels":{},"tty":false,"openStdin":false,\
            "autoRemove":false,"network":"user","publishAll":true,"kernel":"/boot/vmlinuz-6.1.0-57-cloud-amd64",\
            "diskSize":134217728},"process":{"args":["echo","vm"],"env":["PATH=/usr/local/sbin:/usr/local/bin:\
            /usr/sbin:/usr/bin:/sbin:/bin","HOSTNAME=4ee0ee9882a0","HOME=/root"],"cwd":"/","uid":0,"gid":0,\
            "additionalGids":[0],"tty":false,"stdin":false}}""";

    /**
     * {@code docker create --name d-full -e X=1 --entrypoint sh -p 127.0.0.1:8081:81 --dns 8.8.8.8 --label k=v
     * --memory 32m --runtime runsc old/busybox:1 -c 'sleep 100'}.
     */
    private static final String DOCKER_FULL = """
            {"request":{"image":"old/busybox:1","name":"d-full","cmd":["-c","sleep 100"],"entrypoint":["sh"],\
            "env":["X=1"],"runtime":"runsc","nanoCpus":0,"memory":33554432,"pidsLimit":0,"readOnly":false,\
            "labels":{"k":"v"},"tty":false,"openStdin":false,"autoRemove":false,\
            "publish":["127.0.0.1:8081:81/tcp"],"publishAll":false,"dns":["8.8.8.8"],"dnsSearch":[],\
            "dnsOptions":[],"diskSize":0},"process":{"args":["sh","-c","sleep 100"],"env":["PATH=/usr/local/sbin:\
            /usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HOSTNAME=5f40d48bbe17","X=1","HOME=/root"],"cwd":"/",\
            "uid":0,"gid":0,"additionalGids":[0],"tty":false,"stdin":false}}""";

    /** {@code docker create --name d-min --entrypoint "" old/busybox:1 echo y}. */
    private static final String DOCKER_MIN = """
            {"request":{"image":"old/busybox:1","name":"d-min","cmd":["echo","y"],"entrypoint":[],"nanoCpus":0,\
            "memory":0,"pidsLimit":0,"readOnly":false,"tty":false,"openStdin":false,"autoRemove":false,\
            "publishAll":false,"dns":[],"dnsSearch":[],"dnsOptions":[],"diskSize":0},"process":{"args":["echo","y"],\
            "env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HOSTNAME=43dacf727a95",\
            "HOME=/root"],"cwd":"/","uid":0,"gid":0,"additionalGids":[0],"tty":false,"stdin":false}}""";

    @TempDir
    Path root;

    @Test
    void rowsOfTheOldShapeAreRewrittenAtOpenAndReadBackAsTheyWereCreated() throws Exception {
        writeVersion2Database(Map.of("v1-full", V1_FULL, "v1-none", V1_NONE, "v1-vm", V1_VM,
                "d-full", DOCKER_FULL, "d-min", DOCKER_MIN));

        try (Database db = Database.open(root)) {
            assertThat(userVersion(db)).isEqualTo(4);
            assertThat(tables(db)).as("execs live in kilnd's memory: step 4 drops their unused table")
                    .contains("sandboxes").doesNotContain("execs");
            for (String config : db.query("SELECT config FROM sandboxes", rs -> rs.getString(1))) {
                JsonNode stored = JSON.readTree(config);
                assertThat(stored.has("request")).as(config).isFalse();
                assertThat(stored.path("config").path("image").asText()).as(config).isEqualTo("old/busybox:1");
            }
            SandboxStore store = new SandboxStore(db);

            Sandbox full = store.find("v1-full");
            assertThat(full.config()).isEqualTo(new SandboxConfig("old/busybox:1", "v1-full",
                    List.of("sh", "-c", "echo hi $FOO"), List.of(), List.of("FOO=bar", "EMPTY="), "/tmp", "0", "h1",
                    null, null, 500_000_000, 64L << 20, 50, true, Map.of("a", "b", "c", ""), false, false, false,
                    null, List.of("8080:80", "9090/udp"), null, false, List.of("1.1.1.1"), List.of("example.com"),
                    List.of("ndots:2"), List.of("foo:10.0.0.1"), null, 0, null));
            assertThat(full.process()).isEqualTo(new ProcessSpec(List.of("sh", "-c", "echo hi $FOO"),
                    List.of(PATH, "HOSTNAME=h1", "FOO=bar", "EMPTY=", "HOME=/root"), "/tmp", 0, 0, List.of(0),
                    false, false));
            assertThat(full.config().network()).as("the isolation's default network").isNull();

            SandboxConfig none = store.find("v1-none").config();
            assertThat(List.of(none.tty(), none.openStdin(), none.autoRemove())).containsOnly(true);
            assertThat(none.network()).isEqualTo("none");
            assertThat(none.entrypoint()).as("null: the image's entrypoint").isNull();
            assertThat(store.find("v1-none").process().env()).contains("TERM=xterm");

            SandboxConfig vm = store.find("v1-vm").config();
            assertThat(vm.isolation()).isEqualTo("vm");
            assertThat(vm.kernel()).isEqualTo("/boot/vmlinuz-6.1.0-57-cloud-amd64");
            assertThat(vm.diskSize()).isEqualTo(128L << 20);
            assertThat(vm.network()).isEqualTo("user");
            assertThat(vm.publishAll()).isTrue();

            SandboxConfig docker = store.find("d-full").config();
            assertThat(docker.entrypoint()).containsExactly("sh");
            assertThat(docker.cmd()).containsExactly("-c", "sleep 100");
            assertThat(docker.runtime()).isEqualTo("runsc");
            assertThat(docker.publish()).containsExactly("127.0.0.1:8081:81/tcp");
            assertThat(docker.dns()).containsExactly("8.8.8.8");
            assertThat(docker.dnsSearch()).isEmpty();
            assertThat(docker.labels()).isEqualTo(Map.of("k", "v"));
            assertThat(docker.memory()).isEqualTo(32L << 20);

            SandboxConfig dockerMin = store.find("d-min").config();
            assertThat(dockerMin.entrypoint()).as("--entrypoint \"\": none").isEmpty();
            assertThat(dockerMin.env()).as("no -e: the image's").isNull();
            assertThat(dockerMin.labels()).isNull();
        }

        // opened again: nothing left to migrate, the rows read the same
        try (Database db = Database.open(root)) {
            assertThat(userVersion(db)).isEqualTo(4);
            assertThat(new SandboxStore(db).find("d-full").config().runtime()).isEqualTo("runsc");
        }
    }

    @Test
    void aSandboxWrittenNowIsReadBackWhole() {
        SandboxConfig config = new SandboxConfig("img:1", "now", null, List.of(), List.of("A=1"), null, null, null,
                "vm", "firecracker", 1, 2, 3, true, Map.of("l", "v"), true, true, true, "linux/amd64",
                List.of("80"), "n1", true, List.of("9.9.9.9"), List.of("s"), List.of("o"), List.of("h:1.2.3.4"),
                "/k", 64L << 20, null);
        ProcessSpec process = new ProcessSpec(List.of("sh"), List.of(PATH), "/", 1, 2, List.of(3), true, true);
        try (Database db = Database.open(root)) {
            SandboxStore store = new SandboxStore(db);
            store.insert(new Sandbox("a".repeat(64), "now", "img:1", IMAGE_ID, "vm", SandboxState.CREATED, config,
                    process, 1, 0, 0, null, false, 0, 0));
            Sandbox read = store.find("now");
            assertThat(read.config()).isEqualTo(config);
            assertThat(read.process()).isEqualTo(process);
        }
    }

    @Test
    void aDatabaseOfANewerKilnIsRefusedWithOneLine() throws Exception {
        try (Database db = Database.open(root); Statement s = db.connection().createStatement()) {
            s.execute("PRAGMA user_version = 99");
        }
        assertThatThrownBy(() -> Database.open(root)).isInstanceOf(KilnException.class)
                .hasMessageContaining("schema version 99").hasMessageContaining("newer kiln")
                .hasMessageNotContaining("\n");
    }

    /**
     * The database as kiln 67471d7 left it: its tables (step 3 changes rows only and step 4 drops the execs table,
     * so version 2's tables are today's plus that one, made again below), the rows above, and user_version 2.
     */
    private void writeVersion2Database(Map<String, String> configs) throws Exception {
        try (Database db = Database.open(root)) {
            int n = 0;
            for (var e : configs.entrySet()) {
                n++;
                String id = Integer.toHexString(n).repeat(64).substring(0, 64);
                String isolation = e.getKey().equals("v1-vm") ? "vm" : e.getKey().equals("d-full") ? "gvisor"
                        : "container";
                db.update("INSERT INTO sandboxes(id, name, image, image_id, isolation, state, config, created) "
                        + "VALUES (?,?,?,?,?,?,?,?)", id, e.getKey(), "old/busybox:1", IMAGE_ID, isolation,
                        "created", e.getValue(), 1_700_000_000_000L + n);
            }
            try (Statement s = db.connection().createStatement()) {
                s.execute("""
                        CREATE TABLE execs (
                          id TEXT PRIMARY KEY,
                          sandbox_id TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
                          config TEXT NOT NULL,
                          shim_pid INTEGER,
                          exit_code INTEGER
                        )""");
                s.execute("PRAGMA user_version = 2");
            }
        }
    }

    private static List<String> tables(Database db) {
        return db.query("SELECT name FROM sqlite_master WHERE type = 'table'", rs -> rs.getString(1));
    }

    private static int userVersion(Database db) {
        return db.query("PRAGMA user_version", rs -> rs.getInt(1)).getFirst();
    }
}
