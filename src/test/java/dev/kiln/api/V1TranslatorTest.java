package dev.kiln.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.api.v1.CreateRequest;
import dev.kiln.api.v1.ExecRequest;
import dev.kiln.engine.ExecConfig;
import dev.kiln.engine.SandboxConfig;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** kiln's {@code /v1} wire records → the engine's: every field lands where its name says, nulls stay nulls. */
class V1TranslatorTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void everyFieldOfACreateRequestLandsInItsPlace() {
        // each value distinct, so two fields swapped (say dns and dnsSearch) cannot pass
        CreateRequest r = new CreateRequest("img:1", "web", List.of("cmd"), List.of("entry"), List.of("E=1"), "/w",
                "app", "host", "vm", "firecracker", 1, 2, 3, true, Map.of("l", "v"), true, false, true,
                "linux/arm64", List.of("8080:80"), "net1", true, List.of("9.9.9.9"), List.of("search.example"),
                List.of("ndots:3"), List.of("db:10.0.0.2"), "/boot/k", 128L << 20, null);
        SandboxConfig c = V1Translator.config(r);
        assertThat(c).isEqualTo(new SandboxConfig("img:1", "web", List.of("cmd"), List.of("entry"), List.of("E=1"),
                "/w", "app", "host", "vm", "firecracker", 1, 2, 3, true, Map.of("l", "v"), true, false, true,
                "linux/arm64", List.of("8080:80"), "net1", true, List.of("9.9.9.9"), List.of("search.example"),
                List.of("ndots:3"), List.of("db:10.0.0.2"), "/boot/k", 128L << 20, null));
    }

    @Test
    void whatTheCliLeavesOutStaysTheImagesAndAnEmptyEntrypointStaysNone() throws Exception {
        // kiln run --entrypoint "" IMAGE, as the CLI sends it (nulls are not sent)
        CreateRequest r = JSON.readValue("""
                {"image":"img:1","entrypoint":[],"nanoCpus":0,"memory":0,"pidsLimit":0,"readOnly":false,\
                "tty":false,"openStdin":false,"autoRemove":false,"publishAll":false,"diskSize":0}""",
                CreateRequest.class);
        SandboxConfig c = V1Translator.config(r);
        assertThat(c.entrypoint()).as("--entrypoint \"\": none").isEmpty();
        assertThat(c.cmd()).as("no command: the image's").isNull();
        assertThat(c.env()).isNull();
        assertThat(c.network()).as("the isolation's default").isNull();
        assertThat(c.isolation()).isNull();
        assertThat(c.labels()).isNull();
    }

    @Test
    void anExecRequestKeepsItsOverridesAndDetach() {
        ExecConfig e = V1Translator.exec(new ExecRequest(List.of("ls", "-l"), List.of("A=1"), "/tmp", "app", true,
                true, true));
        assertThat(e).isEqualTo(new ExecConfig(List.of("ls", "-l"), List.of("A=1"), "/tmp", "app", true, true, true));
        assertThat(V1Translator.exec(new ExecRequest(List.of("true"), null, null, null, false, false, false)))
                .isEqualTo(new ExecConfig(List.of("true"), null, null, null, false, false, false));
    }
}
