package dev.kiln.api.docker;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.engine.SandboxConfig;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Docker's {@code POST /containers/create} body → the engine's {@link SandboxConfig}. The bodies are the fields that
 * matter of what the docker CLI (28.2) sends for the commands named (captured from it).
 */
class CreateTranslatorTest {

    private static final ObjectMapper JSON = new ObjectMapper();

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

        assertThat(translate("""
                {"Image":"img:1","HostConfig":{"NetworkMode":"none","Isolation":"vm","Runtime":"kiln-vm"}}""", null))
                .extracting(SandboxConfig::network, SandboxConfig::isolation, SandboxConfig::runtime)
                .containsExactly("none", "vm", "kiln-vm");
    }

    private static SandboxConfig translate(String body, String name) throws Exception {
        JsonNode json = JSON.readTree(body);
        return CreateTranslator.translate(json, name, null);
    }
}
