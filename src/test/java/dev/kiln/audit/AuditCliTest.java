package dev.kiln.audit;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.audit.SyscallSurface.Kind;
import dev.kiln.cli.Main;
import dev.kiln.isolation.oci.RuntimeSpec;
import dev.kiln.testing.BusyboxRootfs;
import dev.kiln.testing.Command;
import dev.kiln.testing.TestDaemon;
import dev.kiln.testing.VmTests;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kiln audit --json} end to end against a private kilnd: real runc, runsc and QEMU, filters read from the
 * live processes. What can be asserted honestly: the container's figure is Docker's profile (kiln's container
 * profile equals it); each row's privileges are those its isolation sets up; a front process without a filter has
 * the whole table; and the audit leaves no sandbox behind.
 */
class AuditCliTest {

    @TempDir
    static Path root;
    static TestDaemon daemon;
    static final String IMAGE = "audit-test/busybox:1";
    /** Lives a moment (the audit reads a running process), then starts a program while traced. */
    static final List<String> WORKLOAD = List.of("sh", "-c", "sleep 1; ls / > /dev/null");

    record Result(int exitCode, String out, String err) {
    }

    @BeforeAll
    static void start() throws Exception {
        Command.require("runc", "runc");
        Command.require("strace", "strace");
        daemon = new TestDaemon(root.resolve("store"), root.resolve("run"));
        Result imported = kiln("import", BusyboxRootfs.tarball(root, Map.of()).toString(), IMAGE);
        assertThat(imported.exitCode()).as(imported.err()).isZero();
    }

    @AfterAll
    static void stop() {
        if (daemon != null) {
            daemon.close();
        }
    }

    @Test
    void containerRowIsDockersProfileReadFromTheLiveRuncProcess() throws Exception {
        Path report = root.resolve("container-report.json");
        JsonNode rows = audit("container", "-o", report.toString());
        JsonNode row = rows.get(0);
        assertThat(row.path("isolation").asText()).isEqualTo("container");
        assertThat(row.path("source").asText()).isEqualTo("measured");
        assertThat(row.path("filter").asText()).matches("1 filter \\(\\d+ instructions\\) on 1 thread");

        // the filter runc installed from kiln's profile leaves exactly the surface of that profile, evaluated
        JsonNode reference = rows.get(1);
        assertThat(reference.path("isolation").asText()).isEqualTo("docker default");
        for (String field : List.of("allowed", "argumentChecked", "denied", "allowedSyscalls",
                "argumentCheckedSyscalls")) {
            assertThat(row.path(field)).as(field).isEqualTo(reference.path(field));
        }
        assertThat(texts(row.path("argumentCheckedSyscalls"))).containsExactlyInAnyOrder("socket", "personality",
                "clone");

        // what runc sets up for a default sandbox: root in the sandbox, Docker's 14 capabilities, own namespaces
        JsonNode p = row.path("privileges");
        assertThat(p.path("uid").get(1).asInt()).isZero();
        assertThat(texts(p.path("capabilities"))).containsExactlyInAnyOrderElementsOf(RuntimeSpec.DEFAULT_CAPABILITIES);
        assertThat(p.path("noNewPrivs").asBoolean()).isFalse();
        assertThat(p.path("seccomp").asInt()).isEqualTo(2);
        assertThat(p.path("seccompFilters").asInt()).isEqualTo(1);
        assertThat(texts(p.path("ownNamespaces"))).contains("mnt", "pid", "net", "ipc", "uts");
        assertThat(p.path("hostRoot").asBoolean()).isFalse();

        // strace saw ls read the root directory, a second after the attach
        assertThat(row.path("used").asInt()).isPositive();
        assertThat(row.path("usage").path("calls").has("getdents64")).as(row.path("usage").toString()).isTrue();

        // the report and its chart beside it
        assertThat(Files.readString(report)).contains("\"isolation\" : \"container\"");
        byte[] png = Files.readAllBytes(root.resolve("container-report.png"));
        assertThat(new String(png, 1, 3, java.nio.charset.StandardCharsets.US_ASCII)).isEqualTo("PNG");
        assertNothingLeft();

        // and Docker's own profile file (where the shared workspace has it) leaves the same surface
        SyscallSurface docker = JsonProfileTest.docker();
        assertThat(row.path("allowed").asInt()).isEqualTo(docker.count(Kind.ALLOWED));
        assertThat(row.path("argumentChecked").asInt()).isEqualTo(docker.count(Kind.ARGUMENT_CHECKED));
        assertThat(texts(row.path("allowedSyscalls"))).isEqualTo(docker.names(Kind.ALLOWED));
    }

    @Test
    void gvisorRowIsTheSentrysFilterAndItIsNarrowerThanTheContainers() throws Exception {
        Command.require("runsc", "runsc");
        JsonNode rows = audit("gvisor");
        JsonNode row = rows.get(0);
        assertThat(row.path("process").asText()).startsWith("runsc-sandbox");
        JsonNode p = row.path("privileges");
        assertThat(p.path("seccomp").asInt()).isEqualTo(2);
        assertThat(p.path("noNewPrivs").asBoolean()).isTrue();
        assertThat(p.path("uid").get(1).asInt()).isNotZero(); // runsc drops to nobody
        assertThat(p.path("allCapabilities").asBoolean()).isFalse();
        assertThat(p.path("hostRoot").asBoolean()).isFalse();
        int reachable = row.path("allowed").asInt() + row.path("argumentChecked").asInt();
        assertThat(reachable).isPositive().isLessThan((rows.get(1).path("allowed").asInt() + rows.get(1).path("argumentChecked").asInt()) / 2);
        assertThat(row.path("used").asInt()).isPositive().isLessThanOrEqualTo(reachable + 1);
        assertNothingLeft();
    }

    @Test
    void mistakesAreOneLineErrorsAndStartNothing() throws Exception {
        Result missing = kiln("audit", "--isolation", "container", "audit-test/no-such-image:1", "true");
        assertThat(missing.exitCode()).isEqualTo(125);
        assertThat(missing.err().lines().toList()).singleElement().asString().contains("no-such-image");
        Result unknown = kiln("audit", "--isolation", "chroot", IMAGE, "true");
        assertThat(unknown.exitCode()).isEqualTo(125);
        assertThat(unknown.err().lines().toList()).singleElement().asString().contains("unknown isolation");
        assertNothingLeft();
    }

    /** The VMM as it runs today: its row says whatever its filter says (none yet: every syscall of the table). */
    @Test
    @Tag("slow")
    void vmRowIsWhatTheVmmsFilterSays() throws Exception {
        VmTests.require();
        JsonNode report = auditReport("vm");
        JsonNode row = report.path("rows").get(0);
        assertThat(row.path("isolation").asText()).isEqualTo("vm");
        assertThat(row.hasNonNull("error")).as(row.path("error").asText()).isFalse();
        assertThat(row.path("process").asText()).startsWith("qemu-system");
        JsonNode p = row.path("privileges");
        int reachable = row.path("allowed").asInt() + row.path("argumentChecked").asInt();
        if (p.path("seccomp").asInt() == 0) {
            assertThat(row.path("filter").asText()).startsWith("no filter");
            assertThat(row.path("allowed").asInt()).isEqualTo(report.path("syscalls").asInt());
        } else {
            assertThat(row.path("filter").asText()).contains("filter");
            assertThat(reachable).isLessThan(report.path("syscalls").asInt());
        }
        assertThat(row.path("used").asInt()).isPositive();
        assertNothingLeft();
    }

    // ---- helpers ----

    static JsonNode audit(String isolation, String... more) throws Exception {
        JsonNode rows = auditReport(isolation, more).path("rows");
        assertThat(rows.get(0).hasNonNull("error")).as(rows.get(0).path("error").asText()).isFalse();
        return rows;
    }

    static JsonNode auditReport(String isolation, String... more) throws Exception {
        List<String> args = new ArrayList<>(List.of("audit", "--json", "--isolation", isolation, "--window", "60"));
        args.addAll(List.of(more));
        args.add(IMAGE);
        args.addAll(WORKLOAD);
        Result r = kiln(args.toArray(String[]::new));
        assertThat(r.exitCode()).as(r.err()).isZero();
        JsonNode report = new ObjectMapper().readTree(r.out());
        // one measured row, then the references, each marked as published
        assertThat(report.path("rows").get(1).path("isolation").asText()).isEqualTo("docker default");
        report.path("rows").forEach(row -> assertThat(row.path("source").asText())
                .isIn("measured", "published, not measured"));
        return report;
    }

    /** The audit's sandboxes are gone: none listed, no runtime state, no sandbox directory. */
    static void assertNothingLeft() throws Exception {
        assertThat(kiln("ps", "-a", "-q").out()).isEmpty();
        for (String runtime : List.of("runc", "runsc")) {
            Path state = root.resolve("run").resolve(runtime);
            if (Files.isDirectory(state)) {
                try (var entries = Files.list(state)) {
                    assertThat(entries.toList()).isEmpty();
                }
            }
        }
        if (Files.isDirectory(root.resolve("store/sandboxes"))) {
            try (var dirs = Files.list(root.resolve("store/sandboxes"))) {
                assertThat(dirs.toList()).isEmpty();
            }
        }
    }

    static Result kiln(String... args) {
        List<String> all = new ArrayList<>(List.of("--host", daemon.host()));
        all.addAll(List.of(args));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(all.toArray(String[]::new), new PrintWriter(out), new PrintWriter(err));
        return new Result(code, out.toString(), err.toString());
    }

    static List<String> texts(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }
}
