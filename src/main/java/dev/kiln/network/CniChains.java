package dev.kiln.network;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The iptables rules and chains the CNI plugins made for one network and left behind: CNI DEL removes each sandbox's
 * own, but a crash between ADD and DEL can leave a masquerade rule (commented {@code name: "NET" id: "…"}) and its
 * {@code CNI-…} chain, and rules may name the network's bridge. Removing a network removes these; the shared portmap
 * chains ({@code CNI-HOSTPORT-*}) and other tools' chains stay.
 */
final class CniChains {
    private CniChains() {
    }

    private static final Pattern JUMP = Pattern.compile("\\s-[jg] (CNI-[A-Za-z0-9_-]+)");
    private static final Set<String> SHARED = Set.of("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ",
            "CNI-FORWARD", "CNI-ADMIN");

    static void remove(String network, String bridge) {
        for (String table : List.of("nat", "filter")) {
            Exec save = Exec.run(List.of("iptables-save", "-t", table), null);
            if (save.code() != 0) {
                continue; // no iptables here: the plugins made no rules either
            }
            String script = script(table, save.out().lines().filter(l -> l.startsWith("-A ")).toList(), network, bridge);
            if (script != null) {
                Exec.run(List.of("iptables-restore", "--noflush"), script).orFail("cannot remove the iptables rules of "
                        + "network " + network);
            }
        }
    }

    /** An iptables-restore script deleting the network's rules and chains from {@code rules}; null when none. */
    static String script(String table, List<String> rules, String network, String bridge) {
        String comment = "name: \\\"" + network + "\\\""; // the CNI comment as iptables-save escapes it
        Pattern onBridge = Pattern.compile("\\s-[io] " + Pattern.quote(bridge) + "(\\s|$)");
        Set<String> chains = new LinkedHashSet<>();
        List<String> doomed = new ArrayList<>();
        for (String r : rules) {
            if (r.contains(comment) || onBridge.matcher(r).find()) {
                doomed.add(r);
                Matcher m = JUMP.matcher(r);
                if (m.find() && !SHARED.contains(m.group(1))) {
                    chains.add(m.group(1));
                }
            }
        }
        for (String r : rules) {
            Matcher m = JUMP.matcher(r);
            if (!doomed.contains(r) && m.find() && chains.contains(m.group(1))) {
                doomed.add(r); // another jump into a chain that goes
            }
        }
        if (doomed.isEmpty()) {
            return null;
        }
        StringBuilder s = new StringBuilder("*" + table + "\n");
        for (String r : doomed) {
            String chain = r.split("\\s+")[1];
            if (!chains.contains(chain)) { // rules inside a doomed chain go with its flush
                s.append("-D").append(r.substring(2)).append('\n');
            }
        }
        chains.forEach(c -> s.append("-F ").append(c).append('\n'));
        chains.forEach(c -> s.append("-X ").append(c).append('\n'));
        return s.append("COMMIT\n").toString();
    }

    /**
     * An internal network's isolation (Docker's --internal): nothing is forwarded into or out of its bridge except
     * between its own ports, so sandboxes reach each other and the resolver on the gateway, never past the host.
     * Rules match the bridge by name, so they hold from before its first sandbox until {@link #unisolate}.
     */
    static void isolate(String bridge) {
        for (List<String> rule : isolation(bridge)) {
            List<String> insert = new java.util.ArrayList<>(List.of("iptables", "-w", "-I", "FORWARD"));
            insert.addAll(rule);
            Exec.run(insert, null).orFail("cannot isolate internal network bridge " + bridge);
        }
    }

    /** Removes {@link #isolate}'s rules; rules already gone are fine. */
    static void unisolate(String bridge) {
        for (List<String> rule : isolation(bridge)) {
            List<String> delete = new java.util.ArrayList<>(List.of("iptables", "-w", "-D", "FORWARD"));
            delete.addAll(rule);
            for (int i = 0; i < 4 && Exec.run(delete, null).code() == 0; i++) {
                // a rule inserted twice (a create retried after a crash) goes too
            }
        }
    }

    private static List<List<String>> isolation(String bridge) {
        return List.of(List.of("-i", bridge, "!", "-o", bridge, "-m", "comment", "--comment", "kiln internal",
                        "-j", "DROP"),
                List.of("-o", bridge, "!", "-i", bridge, "-m", "comment", "--comment", "kiln internal", "-j",
                        "DROP"));
    }
}
