package dev.kiln.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.api.v1.CreateRequest;
import dev.kiln.api.v1.ExecRequest;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The hot commands' JSON ({@link Json}) reads and prints as Jackson does, so their output does not change. */
class JsonTest {

    private static final ObjectMapper JACKSON = new ObjectMapper();
    private static final List<String> SAMPLES = List.of(
            "{}", "[]", "[{}]", "{\"a\":[]}", "null", "\"x\"", "12", "-1.5e3",
            "{\"Id\":\"abc\",\"Names\":[\"/n\"],\"Created\":1733500000,\"Labels\":{\"k\":\"v\",\"e\":\"\"},"
                    + "\"Ports\":[{\"IP\":\"0.0.0.0\",\"PublicPort\":8080,\"PrivatePort\":80,\"Type\":\"tcp\"}],"
                    + "\"Config\":{\"Tty\":true,\"Cmd\":[\"sh\",\"-c\",\"echo \\\"hi\\\"\\n\\t\\u0001 é ✓\"],"
                    + "\"Env\":null,\"Nested\":[[1,2],[],{\"x\":{\"y\":[false]}}]},\"Cpu\":0.25,\"Big\":12345678901234567890}");

    @Test
    void printsAsJackson() throws Exception {
        for (String s : SAMPLES) {
            Json j = Json.parse(s);
            var tree = JACKSON.readTree(s);
            assertThat(j.toString()).as(s).isEqualTo(JACKSON.writeValueAsString(tree));
            assertThat(j.pretty()).as(s).isEqualTo(JACKSON.writerWithDefaultPrettyPrinter().writeValueAsString(tree));
        }
    }

    @Test
    void readsAsJacksonsJsonNode() throws Exception {
        String s = SAMPLES.getLast();
        Json j = Json.parse(s);
        var n = JACKSON.readTree(s);
        assertThat(j.path("Id").asText()).isEqualTo(n.path("Id").asText());
        assertThat(j.path("Created").asLong()).isEqualTo(n.path("Created").asLong());
        assertThat(j.at("/Config/Tty").asBoolean()).isEqualTo(n.at("/Config/Tty").asBoolean());
        assertThat(j.path("Config").path("Cmd").path(2).asText()).isEqualTo(n.path("Config").path("Cmd").path(2).asText());
        assertThat(j.path("Labels").has("e")).isTrue();
        assertThat(j.path("Labels").path("x").asText("\u0000")).isEqualTo(n.path("Labels").path("x").asText("\u0000"));
        assertThat(j.path("Config").path("Env").asText("d")).isEqualTo(n.path("Config").path("Env").asText("d"));
        assertThat(j.path("Missing").asText()).isEqualTo(n.path("Missing").asText());
        assertThat(j.path("Ports").path(0).path("PublicPort").asInt()).isEqualTo(8080);
        int count = 0;
        for (Json ignored : j.path("Labels")) {
            count++;
        }
        assertThat(count).isEqualTo(2);
    }

    @Test
    void writesRequestsAsJacksonDoes() throws Exception {
        Map<String, String> labels = new LinkedHashMap<>();
        labels.put("a", "b\"c");
        List<Object> requests = List.of(
                new CreateRequest("img", null, List.of("sh", "-c", "echo ✓"), List.of(), List.of("A=1"), null, null,
                        null, "vm", null, 1_500_000_000L, 512L << 20, 0, true, labels, true, true, true, null,
                        List.of("8080:80"), "none", false, null, null, null, null, null, 0),
                new ExecRequest(List.of("true"), List.of(), null, "1000", false, false, true));
        for (Object r : requests) {
            assertThat(JACKSON.readTree(Json.request(r))).isEqualTo(JACKSON.readTree(JACKSON.writeValueAsString(r)));
        }
        assertThat(Json.request(java.time.Duration.ZERO)).isNull(); // left to Jackson
    }

    @Test
    void refusesBrokenJson() {
        for (String s : List.of("{", "[1,", "{\"a\" 1}", "tru", "\"x", "[1] 2")) {
            assertThatThrownBy(() -> Json.parse(s)).as(s).isInstanceOf(IllegalArgumentException.class);
        }
    }
}
