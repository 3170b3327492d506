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
 * {@code ip -j} there. The VM
 * takes them over as a bridged kiln sandbox takes its veth's ({@link GuestNic}: a TAP beside {@code eth0}, mirred both
 * ways).
 */
final class Netns {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Netns() {
    }

    static GuestNic card(Path netns) {
        String ns = netns.toString();
        JsonNode link = ip(ns, "addr", "show", "dev", "eth0").path(0);
        String mac = link.path("address").asText("");
        int mtu = link.path("mtu").asInt(1500);
        JsonNode inet = null;
        for (JsonNode a : link.path("addr_info")) {
            if (a.path("family").asText().equals("inet")) inet = a;
        }
        String gateway = ip(ns, "route", "show", "default").path(0).path("gateway").asText("");
        if (mac.isEmpty() || inet == null) {
            throw KilnException.invalid("network namespace " + netns + " has no eth0 with an IPv4 address (is it a "
                    + "CNI-wired pod namespace?)");
        }
        return new GuestNic(mac, inet.path("local").asText(), inet.path("prefixlen").asInt(), gateway, mtu, netns,
                List.of());
    }

    private static JsonNode ip(String ns, String... args) {
        List<String> cmd = new java.util.ArrayList<>(List.of("nsenter", "--net=" + ns, "ip", "-j"));
        cmd.addAll(List.of(args));
        try {
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw KilnException.invalid("cannot read network namespace " + ns + ": " + String.join(" ", cmd)
                        + " failed");
            }
            return JSON.readTree(out);
        } catch (IOException e) {
            throw KilnException.invalid("cannot read network namespace " + ns + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted");
        }
    }
}
