/*
 * Parsers of the guest's payloads. Every byte from the guest is read by its length: nothing here expects a NUL, so no
 * string function (strlen, atoi, sscanf, strchr...) ever runs on guest bytes.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"


/* The unsigned decimal p[0..n): digits only (no sign, no space), at most max; 0, or -1 when it is not one. */
int dec_parse(const unsigned char *p, size_t n, unsigned long long max, unsigned long long *out) {
    unsigned long long v = 0;
    if (n == 0) return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        unsigned d = (unsigned)(p[i] - '0');
        if (d > max || v > (max - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* EXIT's "CODE SIGNAL" (docs/guest-protocol.md): CODE 0..255, SIGNAL 0..64, and CODE is 128 + SIGNAL when SIGNAL is
 * set. 0, or -1 for anything else. */
int exit_parse(const unsigned char *p, size_t n, int *code, int *sig) {
    const unsigned char *sp = memchr(p, ' ', n);
    unsigned long long c, s;
    if (sp == NULL || dec_parse(p, (size_t)(sp - p), 255, &c) != 0 ||
        dec_parse(sp + 1, n - (size_t)(sp - p) - 1, 64, &s) != 0 || (s != 0 && c != 128 + s)) return -1;
    *code = (int)c;
    *sig = (int)s;
    return 0;
}

/* HELLO's records: NUL-terminated key=value strings, the payload ending with a NUL; an uptime_ms record, if there, is
 * a decimal (kept in *uptime). 0, or -1 when the payload is not that. */
int hello_parse(const unsigned char *p, size_t n, long long *uptime) {
    if (n == 0 || p[n - 1] != 0) return -1;
    for (size_t i = 0; i < n;) {
        const unsigned char *end = memchr(p + i, 0, n - i); /* found: p[n - 1] is a NUL */
        size_t len = (size_t)(end - (p + i));
        unsigned long long v;
        if (len >= 10 && memcmp(p + i, "uptime_ms=", 10) == 0) {
            if (dec_parse(p + i + 10, len - 10, 1ULL << 50, &v) != 0) return -1;
            *uptime = (long long)v;
        }
        i += len + 1;
    }
    return 0;
}

/* Text from the guest (or its console), made safe for one line of a log or a terminal: printable ASCII as it is, a
 * backslash doubled, every other byte (control characters, escape sequences, non-ASCII) as \xNN; so no guest can
 * end the line and forge one of kiln's. Cut at a whole escape to fit out[0..n). */
void guest_text(const unsigned char *p, size_t len, char *out, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned c = p[i];
        char e[4];
        size_t k;
        if (c == '\\') { e[0] = e[1] = '\\'; k = 2; }
        else if (c >= 0x20 && c < 0x7f) { e[0] = (char)c; k = 1; }
        else { e[0] = '\\'; e[1] = 'x'; e[2] = hex[c >> 4]; e[3] = hex[c & 15]; k = 4; }
        if (o + k >= n) break;
        memcpy(out + o, e, k);
        o += k;
    }
    if (n > 0) out[o] = 0;
}

/* The last non-empty line of a log file (for "why did the VM stop"), escaped by guest_text, or "" */
void last_line(const char *path, char *out, size_t n) {
    char tail[4096];
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof tail - 1 ? size - (off_t)sizeof tail + 1 : 0;
    ssize_t r = size >= 0 ? pread(fd, tail, sizeof tail - 1, from) : -1;
    if (close(fd) != 0 || r <= 0) return;
    char *end = tail + r; /* by length: a console holds the guest's bytes, NULs included */
    while (end > tail && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ')) end--;
    char *start = end;
    while (start > tail && start[-1] != '\n') start--;
    guest_text((const unsigned char *)start, (size_t)(end - start), out, n);
}
