package dev.kiln.cli;

import dev.kiln.testing.Command;
import dev.kiln.testing.NetworkTests;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code kiln network connect/disconnect}: a running sandbox joins a second network, is found there by its name and
 * the alias given, and leaves it again; bad input is one line.
 */
class NetworkConnectCliTest {

    @TempDir
    static Path root;
    static KilnRun kiln;
    static final String IMAGE = "kiln-test/connect-busybox:1";

    @BeforeAll
    static void start() throws Exception {
        Command.require("runc", "runc");
        NetworkTests.requireCniPlugins();
        kiln = new KilnRun(root);
        kiln.importBusybox(IMAGE, Map.of());
    }

    @AfterAll
    static void stop() {
        if (kiln == null) {
            return;
        }
        kiln.removeSandboxes();
        kiln.kiln("network", "prune", "-f");
        kiln.close();
    }

    @Test
    void aSandboxJoinsAndLeavesASecondNetwork() {
        kiln.ok("network", "create", "cfront");
        kiln.ok("network", "create", "cback");
        kiln.ok("run", "-d", "--name", "capp", "--network", "cfront", IMAGE, "sleep", "300");
        kiln.ok("run", "-d", "--name", "cdb", "--network", "cback", IMAGE, "sleep", "300");

        kiln.ok("network", "connect", "--alias", "capi", "cback", "capp");
        assertThat(kiln.ok("exec", "capp", "ip", "-o", "-4", "addr", "show", "eth1").out()).contains("inet ");
        assertThat(kiln.kiln("exec", "cdb", "busybox", "nslookup", "capi").exitCode()).isZero();
        assertThat(kiln.kiln("exec", "capp", "busybox", "nslookup", "cdb").exitCode()).as("cback's names from capp").isZero();
        assertThat(kiln.ok("inspect", "capp").out()).contains("\"cback\"").contains("\"capi\"");

        kiln.ok("network", "disconnect", "cback", "capp");
        assertThat(kiln.kiln("exec", "capp", "ip", "link", "show", "eth1").exitCode()).isNotZero();
        assertThat(kiln.kiln("exec", "cdb", "busybox", "nslookup", "capi").exitCode()).isNotZero();

        for (String[] bad : new String[][]{{"connect", "nosuch", "capp"}, {"connect", "cback", "nosuchsandbox"},
                {"connect", "cfront", "capp"}, {"disconnect", "cback", "capp"},
                {"connect", "--ip", "192.0.2.1", "cback", "capp"}}) {
            String[] args = new String[bad.length + 1];
            args[0] = "network";
            System.arraycopy(bad, 0, args, 1, bad.length);
            KilnRun.Result r = kiln.kiln(args);
            assertThat(r.exitCode()).as(String.join(" ", bad)).isEqualTo(125);
            assertThat(r.errLines()).as(String.join(" ", bad) + ": " + r.err()).hasSize(1);
        }
        KilnRun.Result range = kiln.kiln("network", "create", "--subnet", "10.213.11.0/24", "--ip-range",
                "10.99.0.0/25", "crange");
        assertThat(range.exitCode()).isEqualTo(125);
        assertThat(range.errLines()).hasSize(1);
        assertThat(range.err()).contains("IPRange 10.99.0.0/25 is not inside subnet 10.213.11.0/24");
        assertThat(kiln.ok("network", "ls").out()).doesNotContain("crange");
        kiln.removeSandboxes();
        kiln.ok("network", "rm", "cfront", "cback");
    }
}
