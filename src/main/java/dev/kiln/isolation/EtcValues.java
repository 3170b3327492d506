package dev.kiln.isolation;

import dev.kiln.KilnException;

import java.util.regex.Pattern;

/**
 * The rules for the values kiln writes into a sandbox's /etc files ({@link EtcFiles}): a hostname, nameservers,
 * DNS search domains and options, {@code --add-host} names and addresses. Each is one token of a known alphabet, so
 * none can add a line (a {@code nameserver} of its own) or a field to the file it goes into. Checked when a sandbox
 * is created, whatever asked (CLI, /v1, Docker API), and again when the files are written. Each check throws
 * INVALID with one line naming the value.
 */
public final class EtcValues {

    /** Docker's rule (RFC 1123 labels joined by dots), and its 63-byte limit: Linux allows 64, RFC 1035 63. */
    private static final Pattern HOSTNAME =
            Pattern.compile("(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\\.)*[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?");
    private static final int HOSTNAME_MAX = 63;
    /** A DNS name: labels of up to 63 letters, digits and inner hyphens, an optional trailing dot. */
    private static final Pattern DOMAIN = Pattern.compile(
            "(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.?");
    private static final int DOMAIN_MAX = 253;
    /** A resolv.conf option: {@code NAME} or {@code NAME:VALUE} (ndots:2, timeout:1, edns0, single-request). */
    private static final Pattern DNS_OPTION = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(?::[A-Za-z0-9_.-]{1,64})?");
    /** An /etc/hosts name: as a hostname, with underscores (glibc reads them; people use them). */
    private static final Pattern HOST_ENTRY =
            Pattern.compile("(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?\\.)*[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?");
    /** The characters of an IPv4 or IPv6 literal, with an optional zone; the literal itself is parsed after. */
    private static final Pattern ADDRESS = Pattern.compile("[0-9A-Fa-f:.]{2,45}(?:%[A-Za-z0-9_.-]{1,15})?");

    private EtcValues() {
    }

    /** A sandbox's hostname, as Docker's daemon checks it. */
    public static String hostname(String name) {
        if (name == null || name.length() > HOSTNAME_MAX || !HOSTNAME.matcher(name).matches()) {
            throw KilnException.invalid("invalid hostname " + KilnException.quote(name) + ": use up to " + HOSTNAME_MAX
                    + " letters, digits, hyphens and dots, no hyphen at either end of a label (RFC 1123)");
        }
        return name;
    }

    /** A {@code --dns} nameserver: an IP address literal. */
    public static String nameserver(String address) {
        if (!isAddress(address)) {
            throw KilnException.invalid("invalid DNS server " + KilnException.quote(address) + ": not an IP address");
        }
        return address;
    }

    /** A {@code --dns-search} domain; {@code .} alone is Docker's "no search domains". */
    public static String searchDomain(String domain) {
        if (".".equals(domain)) {
            return domain;
        }
        if (domain == null || domain.length() > DOMAIN_MAX || !DOMAIN.matcher(domain).matches()
                || domain.chars().noneMatch(Character::isLetter)) {
            throw KilnException.invalid("invalid DNS search domain " + KilnException.quote(domain) + ": not a DNS name (labels of "
                    + "letters, digits and hyphens joined by dots)");
        }
        return domain;
    }

    /** A {@code --dns-option}. */
    public static String dnsOption(String option) {
        if (option == null || !DNS_OPTION.matcher(option).matches()) {
            throw KilnException.invalid("invalid DNS option " + KilnException.quote(option) + ": use NAME or NAME:VALUE (letters, "
                    + "digits, '-', '_' and '.', as in ndots:2 or edns0)");
        }
        return option;
    }

    /** An {@code --add-host NAME:ADDRESS}: a host name and an IP address literal. */
    public static String extraHost(String entry) {
        int colon = entry == null ? -1 : entry.indexOf(':');
        if (colon <= 0) {
            throw KilnException.invalid("invalid --add-host " + KilnException.quote(entry) + ": use NAME:ADDRESS");
        }
        String name = entry.substring(0, colon);
        if (name.length() > DOMAIN_MAX || !HOST_ENTRY.matcher(name).matches()) {
            throw KilnException.invalid("invalid --add-host " + KilnException.quote(entry) + ": " + KilnException.quote(name)
                    + " is not a host name (letters, digits, hyphens, underscores and dots)");
        }
        if (!isAddress(entry.substring(colon + 1))) {
            throw KilnException.invalid("invalid --add-host " + KilnException.quote(entry) + ": "
                    + KilnException.quote(entry.substring(colon + 1)) + " is not an IP address");
        }
        return entry;
    }

    private static boolean isAddress(String address) {
        if (address == null || !ADDRESS.matcher(address).matches()) {
            return false;
        }
        try {
            java.net.InetAddress.ofLiteral(address);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }
}
