package dev.kiln.engine;

import dev.kiln.KilnException;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A create or exec request is refused, one line, before anything is made, when a value could not be honestly used. */
class RequestCheckTest {

    @Test
    void aValidRequestPasses() {
        assertThatCode(() -> RequestCheck.create(request("web.local", List.of("192.0.2.53"), List.of("corp.example"),
                List.of("ndots:2"), List.of("db:192.0.2.7"), List.of("A=multi\nline"), Map.of("k", "v\tw"))))
                .doesNotThrowAnyException();
        assertThatCode(() -> RequestCheck.exec(new ExecConfig(List.of("sh", "-c", "echo a\necho b"), null, "/tmp",
                null, false, false, false))).doesNotThrowAnyException();
    }

    @Test
    void valuesForTheSandboxsFilesAreChecked() {
        refused(request("a\nb", null, null, null, null, null, null), "invalid hostname \"a\\nb\"");
        refused(request("../../x", null, null, null, null, null, null), "invalid hostname");
        refused(request("h".repeat(300), null, null, null, null, null, null), "invalid hostname");
        refused(request(null, List.of("1.1.1.1\nnameserver 6.6.6.6"), null, null, null, null, null),
                "invalid DNS server");
        refused(request(null, null, List.of("x\nnameserver 6.6.6.6"), null, null, null, null),
                "invalid DNS search domain \"x\\nnameserver 6.6.6.6\"");
        refused(request(null, null, null, List.of("ndots:1\nnameserver 6.6.6.6"), null, null, null),
                "invalid DNS option");
        refused(request(null, null, null, null, List.of("db\n6.6.6.6 evil:192.0.2.7"), null, null),
                "invalid --add-host");
    }

    @Test
    void aNulAnywhereIsRefused() {
        refused(request(null, null, null, null, null, List.of("A=1\u0000B=2"), null), "env \"A=1\\x00B=2\"");
        refused(request(null, null, null, null, null, null, Map.of("k\u0000", "v")), "labels");
        refused(request(null, null, null, null, null, null, Map.of("k", "v\u0000")), "labels.k");
        refused(request(null, null, null, null, null, Arrays.asList("A=1", null), null), "env holds a null");
        assertThatThrownBy(() -> RequestCheck.exec(new ExecConfig(List.of("tr\u0000ue"), null, null, null, false,
                false, false))).isInstanceOf(KilnException.class).hasMessageStartingWith("cmd \"tr\\x00ue\"");
        assertThatThrownBy(() -> RequestCheck.exec(new ExecConfig(List.of("true"), null, "/a\u0000b", null, false,
                false, false))).isInstanceOf(KilnException.class).hasMessageStartingWith("workdir");
    }

    private static void refused(SandboxConfig r, String message) {
        assertThatThrownBy(() -> RequestCheck.create(r)).isInstanceOfSatisfying(KilnException.class, e -> {
            assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
            assertThat(e.getMessage()).contains(message).doesNotContain("\n").doesNotContain("\u0000");
        });
    }

    private static SandboxConfig request(String hostname, List<String> dns, List<String> search, List<String> options,
                                         List<String> hosts, List<String> env, Map<String, String> labels) {
        return new SandboxConfig("busybox", null, List.of("true"), null, env, null, null, hostname, null, null, 0, 0,
                0, false, labels, false, false, false, null, null, null, false, dns, search, options, hosts, null, 0, null);
    }
}
