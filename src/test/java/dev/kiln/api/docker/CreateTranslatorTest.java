package dev.kiln.api.docker;

import dev.kiln.KilnException;
import dev.kiln.api.JsonBody;
import dev.kiln.engine.SandboxConfig;
import dev.kiln.isolation.Isolators;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Docker's {@code POST /containers/create} body → the engine's {@link SandboxConfig}: Docker's JSON types, refused
 * by field name when wrong, and what each field becomes. The bodies of the later tests are the fields that matter of
 * what the docker CLI (28.2) sends for the commands named (captured from it).
 */
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
        SandboxConfig r = translate("{\"Hostname\":\"\",\"User\":\"\",\"Tty\":false,\"Env\":[\"A=1\"],"
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

    @Test
    void runWithFlags() throws Exception {
        // docker create -e A=1 -e B --entrypoint sh -p 127.0.0.1:8080:80 -p 9090/udp --dns 1.1.1.1
        //   --dns-search example.com --dns-option ndots:2 --add-host db:10.0.0.2 --label k=v --memory 64m
        //   --cpus 0.5 --pids-limit 50 --read-only --rm -t -i --hostname h1 -u app -w /srv IMG -c 'echo hi'
        SandboxConfig c = translate("""
                {"Hostname":"h1","User":"app","Tty":true,"OpenStdin":true,"Env":["B","A=1"],
                 "Cmd":["-c","echo hi"],"Image":"img:1","WorkingDir":"/srv","Entrypoint":["sh"],
                 "Labels":{"k":"v"},"ExposedPorts":{"80/tcp":{},"9090/udp":{}},
                 "HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}],
                   "9090/udp":[{"HostIp":"","HostPort":""}]},"NetworkMode":"default","AutoRemove":true,
                   "Dns":["1.1.1.1"],"DnsSearch":["example.com"],"DnsOptions":["ndots:2"],
                   "ExtraHosts":["db:10.0.0.2"],"ReadonlyRootfs":true,"Memory":67108864,"NanoCpus":500000000,
                   "PidsLimit":50}}""", "web");
        assertThat(c.image()).isEqualTo("img:1");
        assertThat(c.name()).isEqualTo("web");
        assertThat(c.env()).as("B without a value passes unresolved, as Docker's").containsExactly("B", "A=1");
        assertThat(c.entrypoint()).containsExactly("sh");
        assertThat(c.cmd()).containsExactly("-c", "echo hi");
        assertThat(c.publish()).containsExactly("127.0.0.1:8080:80/tcp", "::9090/udp");
        assertThat(c.publishAll()).isFalse();
        assertThat(c.network()).as("Docker's default (bridge) is kiln's default network").isNull();
        assertThat(c.dns()).containsExactly("1.1.1.1");
        assertThat(c.dnsSearch()).containsExactly("example.com");
        assertThat(c.dnsOptions()).containsExactly("ndots:2");
        assertThat(c.extraHosts()).containsExactly("db:10.0.0.2");
        assertThat(c.labels()).isEqualTo(Map.of("k", "v"));
        assertThat(c.memory()).isEqualTo(64L << 20);
        assertThat(c.nanoCpus()).isEqualTo(500_000_000L);
        assertThat(c.pidsLimit()).isEqualTo(50);
        assertThat(c.readOnly()).isTrue();
        assertThat(c.autoRemove()).isTrue();
        assertThat(c.tty()).isTrue();
        assertThat(c.openStdin()).isTrue();
        assertThat(c.hostname()).isEqualTo("h1");
        assertThat(c.user()).isEqualTo("app");
        assertThat(c.workdir()).isEqualTo("/srv");
        assertThat(c.isolation()).isNull();
        assertThat(c.kernel()).as("Docker's face has no --kernel").isNull();
        assertThat(c.diskSize()).isZero();
    }

    @Test
    void absentCmdAndEntrypointAreTheImagesAnEmptyEntrypointIsNone() throws Exception {
        // docker create IMG
        SandboxConfig plain = translate("""
                {"Image":"img:1","Cmd":null,"Entrypoint":null,"Env":null,"Labels":{},
                 "HostConfig":{"NetworkMode":"default","PortBindings":{},"Dns":[],"DnsSearch":[],"DnsOptions":[],
                   "ExtraHosts":null}}""", "");
        assertThat(plain.cmd()).as("the image's CMD").isNull();
        assertThat(plain.entrypoint()).as("the image's ENTRYPOINT").isNull();
        assertThat(plain.env()).as("no -e: the image's").isNull();
        assertThat(plain.labels()).as("no labels").isNull();
        assertThat(plain.name()).as("no name given: kiln picks one").isNull();
        assertThat(plain.publish()).isNull();
        assertThat(plain.network()).isNull();
        assertThat(plain.dns()).isEmpty();
        assertThat(plain.extraHosts()).isNull();

        // docker create --entrypoint "" IMG echo y
        SandboxConfig none = translate("""
                {"Image":"img:1","Cmd":["echo","y"],"Entrypoint":[""],"HostConfig":{"NetworkMode":"default"}}""", null);
        assertThat(none.entrypoint()).as("--entrypoint \"\": no entrypoint").isEmpty();
        assertThat(none.cmd()).containsExactly("echo", "y");
    }

    @Test
    void publishAllAddsTheExposedPortsNotBoundAndNetworksPassThrough() throws Exception {
        // docker create -P --expose 7000 -p 8080:80 --network mynet IMG
        SandboxConfig c = translate("""
                {"Image":"img:1","ExposedPorts":{"7000/tcp":{},"80/tcp":{}},
                 "HostConfig":{"PublishAllPorts":true,"NetworkMode":"mynet",
                   "PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}}}""", null);
        assertThat(c.publishAll()).isTrue();
        assertThat(c.publish()).containsExactly(":8080:80/tcp", "7000/tcp");
        assertThat(c.network()).isEqualTo("mynet");

        SandboxConfig none = translate("""
                {"Image":"img:1","HostConfig":{"NetworkMode":"none","Isolation":"default","Runtime":"kiln-vm"}}""",
                null);
        assertThat(none)
                .extracting(SandboxConfig::network, SandboxConfig::isolation, SandboxConfig::runtime)
                .containsExactly("none", "default", "kiln-vm"); // kept: inspect shows "default" back, as Docker
    }

    @Test
    void runFlagsAreKeptAndWhatKilnCannotHonourIsRefusedByName() throws Exception {
        // what docker-py and the docker CLI send for --stop-timeout 3 --network-alias web --ip 10.0.0.9
        // --group-add 5 and an unset MemorySwappiness (-1)
        SandboxConfig c = translate("""
                {"Image":"img:1","StopTimeout":3,"HostConfig":{"NetworkMode":"mynet","GroupAdd":["5"],
                  "MemorySwappiness":-1,"CgroupnsMode":"","LogConfig":{"Type":"none","Config":{}},
                  "CapAdd":["net_admin"],"Ulimits":[{"Name":"nofile","Soft":10,"Hard":20}]},
                 "NetworkingConfig":{"EndpointsConfig":{"mynet":{"Aliases":["web"],
                   "IPAMConfig":{"IPv4Address":"10.0.0.9"}}}}}""");
        assertThat(c.settings().stopTimeout()).isEqualTo(3);
        assertThat(c.settings().aliases()).containsExactly("web");
        assertThat(c.settings().ipAddress()).isEqualTo("10.0.0.9");
        assertThat(c.settings().groupAdd()).containsExactly("5");
        assertThat(c.settings().memorySwappiness()).isNull();
        assertThat(c.settings().logDriver()).isEqualTo("none");
        assertThat(c.settings().capAdd()).containsExactly("CAP_NET_ADMIN");
        assertThat(c.settings().ulimits()).containsExactly(new dev.kiln.isolation.RunSettings.Ulimit("nofile", 10,
                20));

        for (String[] refused : new String[][]{
                {"{\"Image\":\"i\",\"MacAddress\":\"02:42:ac:11:00:02\"}", "--mac-address"},
                {"{\"Image\":\"i\",\"NetworkingConfig\":{\"EndpointsConfig\":{\"bridge\":{\"DriverOpts\":{\"a\":\"b\"}}}}}",
                        "DriverOpts"},
                {"{\"Image\":\"i\",\"HostConfig\":{\"LogConfig\":{\"Type\":\"syslog\"}}}", "log driver \"syslog\""},
                {"{\"Image\":\"i\",\"HostConfig\":{\"MemorySwappiness\":101}}", "--memory-swappiness"},
                {"{\"Image\":\"i\",\"HostConfig\":{\"Sysctls\":{\"kernel.panic\":\"1\"}}}", "kernel.panic"},
                {"{\"Image\":\"i\",\"HostConfig\":{\"SecurityOpt\":[\"apparmor=x\"]}}", "apparmor=x"}}) {
            assertThatThrownBy(() -> translate(refused[0])).as(refused[0]).isInstanceOf(KilnException.class)
                    .hasMessageContaining(refused[1]);
        }
    }

    private static SandboxConfig translate(String body) {
        return translate(body, null);
    }

    private static SandboxConfig translate(String body, String name) {
        ContainerCreateBody parsed = JsonBody.read(new ByteArrayInputStream(body.getBytes(StandardCharsets.UTF_8)),
                ContainerCreateBody.class);
        return CreateTranslator.translate(parsed, name, null, new Isolators(List.of())); // no Isolation in these
    }
}
