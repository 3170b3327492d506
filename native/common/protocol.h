/*
 * The guest protocol (docs/guest-protocol.md), shared by kiln-init (the guest) and kiln-shim's relays (the host):
 * frame types, the 8-byte header, the payload limit. The host's attach sockets (docs/shim.md) use the same header
 * with stream 0 and their own types.
 *
 *   +------+-------+------------------+-----------------+--------------------+
 *   | type | flags | stream (u16, BE) | length (u32 BE) | payload (length B) |
 *   +------+-------+------------------+-----------------+--------------------+
 */
#ifndef KILN_PROTOCOL_H
#define KILN_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define PROTOCOL_VERSION 1
#define FRAME_HEADER     8
#define MAX_PAYLOAD      65536 /* the longest payload either side sends or accepts */

enum guest_frame_type {
    T_HELLO = 1, T_START, T_EXEC, T_STDIN, T_STDIN_CLOSE, T_STDOUT, T_STDERR, T_EXIT, T_SIGNAL, T_RESIZE,
    T_ERROR, T_STARTED, T_BYE
};

/* One frame's header as it goes on the wire; flags are always 0. */
static inline void frame_header(unsigned char h[FRAME_HEADER], int type, int stream, size_t n) {
    h[0] = (unsigned char)type;
    h[1] = 0;
    h[2] = (unsigned char)(stream >> 8);
    h[3] = (unsigned char)stream;
    h[4] = (unsigned char)(n >> 24);
    h[5] = (unsigned char)(n >> 16);
    h[6] = (unsigned char)(n >> 8);
    h[7] = (unsigned char)n;
}

struct frame {
    int type, stream;
    const unsigned char *payload;
    size_t len;
};

/* The frame at the start of p[0..n), read by its length only: 1 when it is all there (in *f), 0 when more bytes are
 * needed, -1 when its header announces more than MAX_PAYLOAD (*f then holds the header's fields). */
static inline int frame_next(const unsigned char *p, size_t n, struct frame *f) {
    if (n < FRAME_HEADER) return 0;
    uint32_t len = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
    f->type = p[0];
    f->stream = p[2] << 8 | p[3];
    f->payload = p + FRAME_HEADER;
    f->len = len;
    if (len > MAX_PAYLOAD) return -1;
    return n - FRAME_HEADER >= (size_t)len ? 1 : 0;
}

#endif
