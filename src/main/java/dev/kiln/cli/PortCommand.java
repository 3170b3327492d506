package dev.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code kiln port SANDBOX [PORT[/PROTO]]}: the sandbox's published ports, as Docker prints them. */
@Command(name = "port", description = "List a sandbox's published ports")
final class PortCommand extends Subcommand {

    @Parameters(index = "0", paramLabel = "SANDBOX")
    String ref;

    @Parameters(index = "1", arity = "0..1", paramLabel = "PORT[/PROTO]")
    String port;

    @Override
    int run(DaemonClient daemon) throws Exception {
        String want = port == null ? null : port.contains("/") ? port : port + "/tcp";
        boolean any = false;
        try (DaemonClient.Response r = daemon.call("GET", "/v1/sandboxes/" + q(ref) + "/port").ok()) {
            for (JsonNode p : r.json().path("ports")) {
                String key = p.path("containerPort").asInt() + "/" + p.path("protocol").asText();
                if (want != null && !want.equals(key)) {
                    continue;
                }
                String ip = p.path("hostIp").asText("");
                String host = (ip.isEmpty() ? "0.0.0.0" : ip) + ":" + p.path("hostPort").asInt();
                out().println(want != null ? host : key + " -> " + host);
                any = true;
            }
        }
        if (want != null && !any) {
            err().println("kiln: no public port '" + want + "' published for " + ref);
            return 1;
        }
        return 0;
    }
}
