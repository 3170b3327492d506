package dev.kiln.isolation.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The guest card of a VM in a network namespace someone else made and wired (a CRI pod's, by containerd's CNI):
 * {@code eth0}'s MAC, address, prefix and MTU, and the default route's gateway ("" without one), read with
 * {@code ip -j} there (one process). The VM
 * takes them over as a bridged kiln sandbox takes its veth's ({@link GuestNic}: a TAP beside {@code eth0}, mirred both
 * ways).
 */
final class Netns {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Netns() {
    }

    static GuestNic card(Path netns) {
        String ns = netns.toString();
        // one process for both questions (ip's batch mode: one JSON document per command, in order): on a pod's
        // critical path, and a process costs tens of ms on a loaded node
        List<JsonNode> answers = ip(ns, "addr show dev eth0\nroute show default\n");
        JsonNode link = answers.get(0).path(0);
        String mac = link.path("address").asText("");
        int mtu = link.path("mtu").asInt(1500);
        JsonNode inet = null;
        for (JsonNode a : link.path("addr_info")) {
            if (a.path("family").asText().equals("inet")) inet = a;
        }
        String gateway = answers.size() > 1 ? answers.get(1).path(0).path("gateway").asText("") : "";
        if (mac.isEmpty() || inet == null) {
            throw KilnException.invalid("network namespace " + netns + " has no eth0 with an IPv4 address (is it a "
                    + "CNI-wired pod namespace?)");
        }
        return new GuestNic(mac, inet.path("local").asText(), inet.path("prefixlen").asInt(), gateway, mtu, netns,
                List.of());
    }

    /** {@code ip -j -batch -} in the namespace: the JSON document of each command of {@code batch}. */
    private static List<JsonNode> ip(String ns, String batch) {
        List<String> cmd = List.of("nsenter", "--net=" + ns, "ip", "-j", "-batch", "-");
        try {
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            try (var in = p.getOutputStream()) {
                in.write(batch.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            }
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw KilnException.invalid("cannot read network namespace " + ns + ": " + String.join(" ", cmd)
                        + " failed");
            }
            List<JsonNode> answers = new java.util.ArrayList<>();
            try (var parser = JSON.getFactory().createParser(out)) { // one root-level array after another
                while (parser.nextToken() != null) answers.add(JSON.readTree(parser));
            }
            if (answers.isEmpty()) throw KilnException.invalid("cannot read network namespace " + ns + ": no answer");
            return answers;
        } catch (IOException e) {
            throw KilnException.invalid("cannot read network namespace " + ns + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted");
        }
    }
}
