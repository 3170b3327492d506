package dev.kiln.network;

import java.util.ArrayList;
import java.util.List;

/**
 * Picks and checks the subnets of kiln's networks: a candidate must overlap none of the host's IPv4 routes and none of
 * kiln's other networks (whose bridges may not exist yet, so their routes do not show).
 */
final class Subnets {
    private Subnets() {
    }

    /** The default root: 10.88.0.0/16, else 10.89/16 …; another root: a /24 in 10.90–10.127 derived from its hash. */
    static String pick(boolean standard, String rootHash) {
        return pick(standard, rootHash, List.of());
    }

    /** The same candidates, also skipping the subnets in {@code taken}. */
    static String pick(boolean standard, String rootHash, List<String> taken) {
        List<String> routes = new ArrayList<>(hostRoutes());
        routes.addAll(taken);
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

    /**
     * {@code cidr} as a user typed it, checked: an IPv4 network address with a prefix from 8 to 30 (room for the
     * gateway and at least one sandbox). Refused with one line otherwise, as Docker refuses host bits.
     */
    static String checked(String cidr) {
        if (!cidr.matches("\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}")) {
            throw dev.kiln.KilnException.invalid("invalid subnet \"" + cidr + "\": use an IPv4 CIDR such as "
                    + "10.42.0.0/24 (IPv6 is not supported yet)");
        }
        long[] p = parse(cidr);
        if (java.util.Arrays.stream(cidr.split("/")[0].split("\\."))
                .anyMatch(o -> Integer.parseInt(o) > 255) || p[1] < 8 || p[1] > 30) {
            throw dev.kiln.KilnException.invalid("invalid subnet \"" + cidr + "\": use an IPv4 CIDR (octets up to "
                    + "255) with a prefix length from 8 to 30");
        }
        if ((p[0] & ~mask(p[1]) & 0xFFFFFFFFL) != 0) {
            throw dev.kiln.KilnException.invalid("invalid subnet " + cidr + ": it should be "
                    + address(p[0] & mask(p[1])) + "/" + p[1]);
        }
        return cidr;
    }

    /** Whether {@code address} (IPv4, dotted) is a host address of {@code subnet}: not its network or broadcast. */
    static boolean hostOf(String subnet, String address) {
        long[] s = parse(subnet);
        long a = parse(address)[0];
        long m = mask(s[1]);
        return (a & m) == s[0] && a != s[0] && a != (s[0] | (~m & 0xFFFFFFFFL));
    }

    /** The first host address of {@code subnet}: where the bridge plugin puts the gateway unless told otherwise. */
    static String firstHost(String subnet) {
        return address(parse(subnet)[0] + 1);
    }

    /**
     * {@code ipRange} (Docker's IPRange, a CIDR inside {@code subnet}) as host-local's first and last address to hand
     * out, leaving the subnet's network and broadcast addresses out; refused with one line when it is not inside.
     */
    static String[] range(String subnet, String ipRange) {
        String r = checkedRange(ipRange);
        long[] s = parse(subnet);
        long[] x = parse(r);
        if (x[1] < s[1] || !overlaps(subnet, r)) {
            throw dev.kiln.KilnException.invalid("IPRange " + ipRange + " is not inside subnet " + subnet);
        }
        long broadcast = s[0] | (~mask(s[1]) & 0xFFFFFFFFL);
        long first = Math.max(x[0], s[0] + 1);
        long last = Math.min(x[0] | (~mask(x[1]) & 0xFFFFFFFFL), broadcast - 1);
        return new String[] {address(first), address(last)};
    }

    private static String checkedRange(String cidr) {
        if (!cidr.matches("\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}") || parse(cidr)[1] > 32
                || (parse(cidr)[0] & ~mask(parse(cidr)[1]) & 0xFFFFFFFFL) != 0) {
            throw dev.kiln.KilnException.invalid("invalid IPRange \"" + cidr + "\": an IPv4 CIDR inside the subnet, "
                    + "e.g. 10.42.0.128/25");
        }
        return cidr;
    }

    private static long mask(long prefix) {
        return prefix == 0 ? 0 : (0xFFFFFFFFL << (32 - prefix)) & 0xFFFFFFFFL;
    }

    private static String address(long a) {
        return ((a >> 24) & 255) + "." + ((a >> 16) & 255) + "." + ((a >> 8) & 255) + "." + (a & 255);
    }

    static boolean overlaps(String a, String b) {
        long[] x = parse(a);
        long[] y = parse(b);
        long mask = mask(Math.min(x[1], y[1]));
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
