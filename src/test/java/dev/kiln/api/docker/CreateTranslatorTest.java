package dev.kiln.api.docker;

import dev.kiln.KilnException;
import dev.kiln.api.JsonBody;
import dev.kiln.api.v1.CreateRequest;
import dev.kiln.isolation.Isolators;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Docker's container Config as kiln reads it: Docker's JSON types, refused by field name when wrong. */
class CreateTranslatorTest {

    @Test
    void wrongJsonTypesAreA400NamingTheField() {
        Map<String, String> cases = Map.ofEntries(
                Map.entry("{\"Image\":\"i\",\"Cmd\":{}}", "Cmd: expected a string or an array of strings, not an object"),
                Map.entry("{\"Image\":\"i\",\"Cmd\":5}", "Cmd: expected a string or an array of strings, not an integer"),
                Map.entry("{\"Image\":\"i\",\"Entrypoint\":[true]}", "Entrypoint[0]: expected a string, not true"),
                Map.entry("{\"Image\":\"i\",\"Env\":[1,2]}", "Env[0]: expected a string, not an integer"),
                Map.entry("{\"Image\":\"i\",\"Env\":\"A=1\"}", "Env: expected an array, not a string"),
                Map.entry("{\"Image\":\"i\",\"HostConfig\":{\"Memory\":\"lots\"}}",
                        "HostConfig.Memory: expected an integer, not a string"),
                Map.entry("{\"Image\":\"i\",\"HostConfig\":[]}", "HostConfig: expected an object, not an array"),
                Map.entry("{\"Image\":\"i\",\"HostConfig\":{\"Privileged\":\"false\"}}",
                        "HostConfig.Privileged: expected true or false, not a string"),
                Map.entry("{\"Image\":\"i\",\"HostConfig\":{\"Dns\":\"1.1.1.1\"}}",
                        "HostConfig.Dns: expected an array, not a string"),
                Map.entry("{\"Image\":\"i\",\"HostConfig\":{\"PortBindings\":{\"80/tcp\":[{\"HostPort\":80}]}}}",
                        "HostConfig.PortBindings.80/tcp[0].HostPort: expected a string, not an integer"),
                Map.entry("{\"Image\":\"i\",\"Labels\":{\"a\":{}}}", "Labels.a: expected a string, not an object"),
                Map.entry("{\"Image\":5}", "Image: expected a string, not an integer"),
                Map.entry("{\"Image\":\"i\",\"Tty\":\"yes\"}", "Tty: expected true or false, not a string"));
        cases.forEach((body, message) -> assertThatThrownBy(() -> translate(body)).as(body)
                .isInstanceOfSatisfying(KilnException.class, e -> {
                    assertThat(e.kind()).isEqualTo(KilnException.Kind.INVALID_ARGUMENT);
                    assertThat(e.getMessage()).contains(message);
                }));
    }

    @Test
    void dockersOwnShapesStillTranslate() {
        // what the docker CLI sends, nulls for unset pointers included
        CreateRequest r = translate("{\"Hostname\":\"\",\"User\":\"\",\"Tty\":false,\"Env\":[\"A=1\"],"
                + "\"Cmd\":[\"echo\",\"hi\"],\"Image\":\"busybox\",\"Entrypoint\":null,\"Labels\":{\"l\":\"v\"},"
                + "\"Volumes\":{},\"ExposedPorts\":{\"80/tcp\":{}},\"HostConfig\":{\"Binds\":null,"
                + "\"LogConfig\":{\"Type\":\"\",\"Config\":{}},\"NetworkMode\":\"default\","
                + "\"PortBindings\":{\"80/tcp\":[{\"HostIp\":\"\",\"HostPort\":\"8080\"}]},"
                + "\"RestartPolicy\":{\"Name\":\"no\",\"MaximumRetryCount\":0},\"AutoRemove\":true,"
                + "\"Dns\":[],\"DnsOptions\":[],\"DnsSearch\":[],\"Memory\":0,\"PidsLimit\":null,\"Init\":null,"
                + "\"Mounts\":null,\"ConsoleSize\":[24,80]},\"NetworkingConfig\":{\"EndpointsConfig\":{}}}");
        assertThat(r.image()).isEqualTo("busybox");
        assertThat(r.cmd()).containsExactly("echo", "hi");
        assertThat(r.entrypoint()).isNull();
        assertThat(r.env()).containsExactly("A=1");
        assertThat(r.hostname()).isNull();
        assertThat(r.autoRemove()).isTrue();
        assertThat(r.publish()).containsExactly(":8080:80/tcp");
        assertThat(r.labels()).containsEntry("l", "v");
        // Docker's StrSlice: one string is a one-element command; [""] as Entrypoint is "none"
        assertThat(translate("{\"Image\":\"i\",\"Cmd\":\"date\"}").cmd()).containsExactly("date");
        assertThat(translate("{\"Image\":\"i\",\"Entrypoint\":[\"\"]}").entrypoint()).isEmpty();
    }

    private static CreateRequest translate(String body) {
        ContainerCreateBody parsed = JsonBody.read(new ByteArrayInputStream(body.getBytes(StandardCharsets.UTF_8)),
                ContainerCreateBody.class);
        return CreateTranslator.translate(parsed, null, null, new Isolators(List.of())); // no Isolation in these
    }
}
