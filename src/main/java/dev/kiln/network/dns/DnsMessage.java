package dev.kiln.network.dns;

import java.io.ByteArrayOutputStream;
import java.net.Inet4Address;
import java.util.List;
import java.util.Locale;

/**
 * The little of RFC 1035 §4.1 the embedded resolver needs: read the header and the one question of a query, and write
 * an answer with A records (or none) or an error code. Every length is checked against the packet; nothing in the
 * packet is trusted to be well formed, so a hostile sandbox can at worst get no answer.
 */
final class DnsMessage {

    static final int TYPE_A = 1;
    static final int TYPE_OPT = 41;
    static final int TYPE_ANY = 255;
    static final int CLASS_IN = 1;
    static final int NOERROR = 0;
    static final int FORMERR = 1;
    static final int SERVFAIL = 2;
    static final int NOTIMP = 4;
    static final int REFUSED = 5;
    static final int HEADER = 12;
    /** What a client without EDNS accepts over UDP (RFC 1035 §4.2.1). */
    static final int PLAIN_UDP = 512;
    /** Docker's embedded DNS gives its answers ten minutes too. */
    static final int TTL = 600;
    private static final int MAX_NAME = 255;
    private static final int MAX_LABEL = 63;
    /** A name in a query needs no pointers at all; a few are tolerated, a loop is not. */
    private static final int MAX_JUMPS = 8;

    private DnsMessage() {
    }

    /**
     * A query's header and question. {@code name} is lower case without the trailing dot; {@code questionEnd} is the
     * offset after QTYPE/QCLASS, so the question can be echoed byte for byte (a pointer in it stays valid, as the
     * answer keeps the same offsets).
     */
    record Query(int id, int flags, String name, int type, int qclass, int questionEnd) {
        int opcode() {
            return (flags >> 11) & 0xF;
        }
    }

    /** Thrown for a query that cannot be answered other than with FORMERR (its id is still known). */
    static final class Malformed extends Exception {
        final int id;

        Malformed(int id, String why) {
            super(why, null, false, false);
            this.id = id;
        }
    }

    /**
     * Parses a query; null for what must not be answered at all (shorter than a header, or a response: answering
     * those could start a loop between two resolvers).
     */
    static Query parse(byte[] p, int length) throws Malformed {
        if (length < HEADER || length > p.length) {
            return null;
        }
        if ((u16(p, 2) & 0x8000) != 0) {
            return null;
        }
        return question(p, length);
    }

    /** The header and question of any message, query or response (which the forwarder checks against the query). */
    static Query question(byte[] p, int length) throws Malformed {
        if (length < HEADER || length > p.length) {
            throw new Malformed(-1, "shorter than a header");
        }
        int id = u16(p, 0);
        int flags = u16(p, 2);
        if (u16(p, 4) != 1) {
            throw new Malformed(id, "not exactly one question");
        }
        StringBuilder name = new StringBuilder();
        int pos = HEADER;
        int end = -1; // where the question continues after its name (after the first pointer, if any)
        int jumps = 0;
        while (true) {
            if (pos >= length) {
                throw new Malformed(id, "name runs past the packet");
            }
            int len = p[pos] & 0xFF;
            if ((len & 0xC0) == 0xC0) {
                if (pos + 1 >= length || ++jumps > MAX_JUMPS) {
                    throw new Malformed(id, "bad compression pointer");
                }
                int target = ((len & 0x3F) << 8) | (p[pos + 1] & 0xFF);
                // only backwards, into the message after the header: a pointer can then never loop forever
                if (target < HEADER || target >= pos) {
                    throw new Malformed(id, "bad compression pointer");
                }
                if (end < 0) {
                    end = pos + 2;
                }
                pos = target;
                continue;
            }
            if ((len & 0xC0) != 0) {
                throw new Malformed(id, "unknown label type");
            }
            if (len == 0) {
                if (end < 0) {
                    end = pos + 1;
                }
                break;
            }
            if (len > MAX_LABEL || pos + 1 + len > length || name.length() + len + 1 > MAX_NAME) {
                throw new Malformed(id, "label too long");
            }
            if (!name.isEmpty()) {
                name.append('.');
            }
            for (int i = 0; i < len; i++) {
                name.append((char) (p[pos + 1 + i] & 0xFF));
            }
            pos += 1 + len;
        }
        if (end + 4 > length) {
            throw new Malformed(id, "question ends early");
        }
        return new Query(id, flags, name.toString().toLowerCase(Locale.ROOT), u16(p, end), u16(p, end + 2), end + 4);
    }

    /** The answer to {@code q} (asked in {@code packet}) with {@code addresses} as A records, NOERROR. */
    static byte[] answer(byte[] packet, Query q, List<Inet4Address> addresses) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(q.questionEnd() + 16 * addresses.size());
        header(out, q.id(), q.flags(), NOERROR, 1, addresses.size());
        out.write(packet, HEADER, q.questionEnd() - HEADER);
        for (Inet4Address a : addresses) {
            u16(out, 0xC000 | HEADER); // the name: a pointer to the question's
            u16(out, TYPE_A);
            u16(out, CLASS_IN);
            u16(out, TTL >>> 16);
            u16(out, TTL & 0xFFFF);
            u16(out, 4);
            out.writeBytes(a.getAddress());
        }
        return out.toByteArray();
    }

    /** An error answer; with the question echoed when it could be read. */
    static byte[] error(byte[] packet, Query q, int rcode) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(q.questionEnd());
        header(out, q.id(), q.flags(), rcode, 1, 0);
        out.write(packet, HEADER, q.questionEnd() - HEADER);
        return out.toByteArray();
    }

    /**
     * The largest answer the client of {@code query} accepts over UDP: the payload size of its EDNS OPT record
     * (RFC 6891, never below 512), else 512. A malformed record section counts as no OPT.
     */
    static int udpLimit(byte[] p, int length, Query q) {
        int records = u16(p, 6) + u16(p, 8) + u16(p, 10);
        int pos = q.questionEnd();
        for (int i = 0; i < records; i++) {
            while (pos < length && (p[pos] & 0xC0) == 0 && p[pos] != 0) {
                pos += 1 + (p[pos] & 0xFF); // the owner's labels (an OPT's is the root: none)
            }
            pos += pos < length && (p[pos] & 0xC0) == 0xC0 ? 2 : 1; // a pointer or the root label ends the name
            if (pos + 10 > length) {
                break;
            }
            if (u16(p, pos) == TYPE_OPT) {
                return Math.max(PLAIN_UDP, u16(p, pos + 2));
            }
            pos += 10 + u16(p, pos + 8);
        }
        return PLAIN_UDP;
    }

    /**
     * What is relayed instead of an upstream {@code reply} too large for the client: its header with TC set and
     * the question, no records (RFC 2181 §9), so the client knows it got nothing rather than part of an answer.
     */
    static byte[] truncated(byte[] reply, byte[] query, Query q) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(q.questionEnd());
        u16(out, q.id());
        u16(out, u16(reply, 2) | 0x0200);
        u16(out, 1);
        u16(out, 0);
        u16(out, 0);
        u16(out, 0);
        out.write(query, HEADER, q.questionEnd() - HEADER);
        return out.toByteArray();
    }

    /** FORMERR for a query whose question could not be read: the header only. */
    static byte[] formatError(int id) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(HEADER);
        header(out, id, 0, FORMERR, 0, 0);
        return out.toByteArray();
    }

    private static void header(ByteArrayOutputStream out, int id, int queryFlags, int rcode, int questions, int answers) {
        // QR=1, the query's opcode and RD, RA=1 (we recurse through the host's resolvers), the rcode
        int flags = 0x8000 | (queryFlags & 0x7800) | (queryFlags & 0x0100) | 0x0080 | (rcode & 0xF);
        u16(out, id);
        u16(out, flags);
        u16(out, questions);
        u16(out, answers);
        u16(out, 0);
        u16(out, 0);
    }

    private static int u16(byte[] p, int at) {
        return ((p[at] & 0xFF) << 8) | (p[at + 1] & 0xFF);
    }

    private static void u16(ByteArrayOutputStream out, int v) {
        out.write((v >>> 8) & 0xFF);
        out.write(v & 0xFF);
    }
}
