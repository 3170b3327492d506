package dev.kiln.api;

import dev.kiln.KilnException;
import dev.kiln.api.v1.CreateRequest;
import dev.kiln.api.v1.ExecRequest;
import dev.kiln.api.v1.NetworkCreateRequest;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** kilnd's request bodies are typed strictly: a wrong JSON type is refused naming the field, never coerced. */
class JsonBodyTest {

    @Test
    void wrongTypesAreRefusedNamingTheField() {
        Map<String, String> cases = Map.ofEntries(
                Map.entry("{\"image\":\"i\",\"memory\":\"5\"}", "memory: expected an integer, not a string"),
                Map.entry("{\"image\":\"i\",\"memory\":1.5}", "memory: expected an integer, not a number with a fraction"),
                Map.entry("{\"image\":\"i\",\"memory\":true}", "memory: expected an integer, not true"),
                Map.entry("{\"image\":\"i\",\"tty\":\"true\"}", "tty: expected true or false, not a string"),
                Map.entry("{\"image\":\"i\",\"tty\":1}", "tty: expected true or false, not an integer"),
                Map.entry("{\"image\":\"i\",\"hostname\":5}", "hostname: expected a string, not an integer"),
                Map.entry("{\"image\":\"i\",\"hostname\":[\"a\"]}", "hostname: expected a string, not an array"),
                Map.entry("{\"image\":\"i\",\"cmd\":\"true\"}", "cmd: expected an array, not a string"),
                Map.entry("{\"image\":\"i\",\"cmd\":{}}", "cmd: expected an array, not an object"),
                Map.entry("{\"image\":\"i\",\"env\":[1,2]}", "env[0]: expected a string, not an integer"),
                Map.entry("{\"image\":\"i\",\"env\":[null]}", "env"),
                Map.entry("{\"image\":\"i\",\"labels\":[]}", "labels: expected an object, not an array"),
                Map.entry("{\"image\":\"i\",\"labels\":{\"a\":1}}", "labels.a: expected a string, not an integer"),
                Map.entry("{\"image\":\"i\",\"nope\":1}", "unknown field nope"));
        cases.forEach((body, message) -> assertThatThrownBy(() -> read(body, CreateRequest.class))
                .as(body).isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
                    assertThat(e.getMessage()).contains(message).doesNotContain("\n");
                }));
        assertThatThrownBy(() -> read("{\"cmd\":[\"ls\"],\"detach\":\"yes\"}", ExecRequest.class))
                .hasMessageContaining("detach: expected true or false, not a string");
        assertThatThrownBy(() -> read("{\"name\":\"n\",\"labels\":{\"a\":[]}}", NetworkCreateRequest.class))
                .hasMessageContaining("labels.a: expected a string, not an array");
    }

    @Test
    void notAnObjectOrNotJsonIsOneLine() {
        for (String body : List.of("", "null", "[]", "5", "\"x\"", "{bad", "{\"image\":\"i\"} {}", "\u0000\u0001")) {
            assertThatThrownBy(() -> read(body, CreateRequest.class)).as(body)
                    .isInstanceOfSatisfying(KilnException.class, e -> {
                        assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
                        assertThat(e.getMessage()).doesNotContain("\n").doesNotContain("\u0000");
                    });
        }
    }

    @Test
    void wellTypedBodiesAndNullsReadAsBefore() {
        CreateRequest r = read("{\"image\":\"i\",\"cmd\":[\"echo\",\"hi\"],\"memory\":1048576,\"tty\":true,"
                + "\"labels\":{\"a\":\"b\"},\"hostname\":null,\"pidsLimit\":null}", CreateRequest.class);
        assertThat(r.cmd()).containsExactly("echo", "hi");
        assertThat(r.memory()).isEqualTo(1048576);
        assertThat(r.tty()).isTrue();
        assertThat(r.labels()).containsEntry("a", "b");
        assertThat(r.hostname()).isNull();
        assertThat(r.pidsLimit()).isZero(); // null is an absent field, as in Go
    }

    static <T> T read(String body, Class<T> type) {
        return JsonBody.read(new ByteArrayInputStream(body.getBytes(StandardCharsets.UTF_8)), type);
    }
}
