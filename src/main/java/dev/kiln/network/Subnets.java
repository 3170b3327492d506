package dev.kiln.network;

import java.util.ArrayList;
import java.util.List;

/** Picks the kiln network's subnet: the first candidate that overlaps none of the host's IPv4 routes. */
final class Subnets {
    private Subnets() {
    }

    /** The default root: 10.88.0.0/16, else 10.89/16 …; another root: a /24 in 10.90–10.127 derived from its hash. */
    static String pick(boolean standard, String rootHash) {
        List<String> routes = hostRoutes();
        int seed = Integer.parseInt(rootHash.substring(0, 6), 16);
        for (int i = 0; i < 4096; i++) {
            String candidate;
            if (standard) {
                candidate = "10." + (88 + i % 40) + ".0.0/16";
            } else {
                int n = (seed + i) % (38 * 256);
                candidate = "10." + (90 + n / 256) + "." + (n % 256) + ".0/24";
            }
            if (routes.stream().noneMatch(r -> overlaps(r, candidate))) {
                return candidate;
            }
        }
        throw new dev.kiln.KilnException(dev.kiln.KilnException.Kind.UNAVAILABLE,
                "no free subnet for the kiln network: every candidate overlaps a host route");
    }

    static List<String> hostRoutes() {
        Exec r = Exec.run(List.of("ip", "-4", "route", "show", "table", "all"), null);
        List<String> out = new ArrayList<>();
        for (String line : r.out().lines().toList()) {
            String[] f = line.strip().split("\\s+");
            String dst = f.length > 0 && (f[0].equals("local") || f[0].equals("broadcast")) && f.length > 1 ? f[1] : f[0];
            if (dst.isEmpty() || dst.equals("default") || !Character.isDigit(dst.charAt(0))) {
                continue;
            }
            String net = dst.contains("/") ? dst : dst + "/32";
            if (!net.startsWith("127.")) {
                out.add(net);
            }
        }
        return out;
    }

    static boolean overlaps(String a, String b) {
        long[] x = parse(a);
        long[] y = parse(b);
        long prefix = Math.min(x[1], y[1]);
        long mask = prefix == 0 ? 0 : (0xFFFFFFFFL << (32 - prefix)) & 0xFFFFFFFFL;
        return (x[0] & mask) == (y[0] & mask);
    }

    private static long[] parse(String cidr) {
        String[] parts = cidr.split("/");
        String[] o = parts[0].split("\\.");
        long addr = 0;
        for (int i = 0; i < 4; i++) {
            addr = addr << 8 | (i < o.length ? Long.parseLong(o[i]) : 0);
        }
        return new long[] {addr, parts.length > 1 ? Long.parseLong(parts[1]) : 32};
    }
}
