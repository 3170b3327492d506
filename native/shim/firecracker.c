/*
 * The Firecracker boot sequence (docs/vm.md, "Firecracker"): kilnd writes the API requests (FirecrackerApi), the relay
 * only carries them, each on its own connection to the VMM's API socket, and reads each answer's status line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"


/* "PUT /drives/rw" of an HTTP request, for messages. */
static void request_line(const char *req, char *out, size_t n) {
    size_t k = strcspn(req, "\r\n");
    const char *http = strstr(req, " HTTP/");
    if (http != NULL && (size_t)(http - req) < k) k = (size_t)(http - req);
    snprintf(out, n, "%.*s", (int)(k < 200 ? k : 200), req);
}

/* Firecracker's answer to a refused request is {"fault_message":"..."}; the message, else the body, on one line. */
static void fault_of(const char *body, char *out, size_t n) {
    const char *key = strstr(body, "\"fault_message\"");
    const char *p = key ? strchr(key + 15, '"') : NULL;
    size_t k = 0;
    if (p != NULL) {
        for (p++; *p && *p != '"' && k + 1 < n; p++) {
            if (*p == '\\' && p[1]) p++;
            out[k++] = *p;
        }
    } else {
        for (p = body; *p && k + 1 < n; p++) out[k++] = *p;
    }
    out[k] = 0;
    for (char *c = out; *c; c++) if ((unsigned char)*c < 0x20) *c = ' ';
}

/*
 * One API request on its own connection (Connection: close, as FirecrackerApi builds them), bounded by ms for the
 * write and for the answer. Returns the HTTP status, or -1 (errno set, or EPROTO for a garbled answer); a
 * status >= 300 leaves the fault message in fault.
 */
static int api_exchange(int fd, const char *req, size_t n, int ms, char *fault, size_t faultn) {
    char resp[8192];
    size_t len = 0;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 || write_all(fd, req, n) != 0) return -1;
    long long deadline = now_ms() + ms;
    int status = -1;
    for (;;) {
        ssize_t r = len < sizeof resp - 1 ? read(fd, resp + len, sizeof resp - 1 - len) : 0;
        if (r < 0 && errno == EINTR && now_ms() < deadline) continue;
        if (r < 0) return -1; /* EAGAIN: SO_RCVTIMEO passed */
        len += (size_t)r;
        resp[len] = 0;
        char *end = strstr(resp, "\r\n\r\n");
        if (status < 0 && len >= 12 && sscanf(resp, "HTTP/1.%*d %d", &status) != 1) { errno = EPROTO; return -1; }
        if (end != NULL && status >= 200 && status < 300) return status; /* the body of a success is not needed */
        if (end != NULL) { /* a refusal: its body, as far as Content-Length says or the connection goes */
            const char *cl = strcasestr(resp, "\r\ncontent-length:");
            long want = cl != NULL && cl < end ? atol(cl + 17) : -1;
            if (r == 0 || (want >= 0 && (long)(len - (size_t)(end + 4 - resp)) >= want)) {
                fault_of(end + 4, fault, faultn);
                return status;
            }
        } else if (r == 0) { errno = EPROTO; return -1; }
        if (now_ms() > deadline) { errno = ETIMEDOUT; return -1; }
    }
}

/*
 * Sends the VMM's boot sequence: every NUL-terminated HTTP request in reqs, in order, each on a fresh connection to
 * sock, each to be answered 2xx within ms (G_API_MS for the boot sequence; a snapshot's save writes the guest's
 * memory). The socket may take up to G_CONNECT_MS to appear; a VMM that exits meanwhile, a refusal or a timeout ends
 * the sequence with one line. 0 when all were accepted.
 */
int send_api(const char *sock, const struct buf *reqs, int ms, int (*vmm_gone)(void)) {
    long long deadline = now_ms() + G_CONNECT_MS;
    size_t off = 0;
    while (off < reqs->len) {
        const char *req = reqs->p + off;
        size_t n = strnlen(req, reqs->len - off);
        char what[220], fault[400], vmm[300];
        if (off + n == reqs->len) { say_err("kiln: the VMM's API requests do not end with a NUL"); return -1; }
        off += n + 1;
        if (n == 0) continue;
        request_line(req, what, sizeof what);
        int fd;
        while ((fd = g_connect_unix(sock)) < 0) {
            if (vmm_gone()) {
                last_line("vmm.log", vmm, sizeof vmm);
                say_err("kiln: the VMM exited before it was configured%s%s", vmm[0] ? ": " : "", vmm);
                return -1;
            }
            if (now_ms() > deadline) {
                say_err("kiln: the VMM did not open its API socket %s within %d s", sock, G_CONNECT_MS / 1000);
                return -1;
            }
            struct timespec ts = { 0, 5000000 };
            nanosleep(&ts, NULL);
        }
        fault[0] = 0;
        int status = api_exchange(fd, req, n, ms, fault, sizeof fault);
        int e = errno;
        xclose(fd);
        if (status < 0) { say_err("kiln: the VMM did not answer %s: %s", what, strerror(e)); return -1; }
        if (status >= 300) { say_err("kiln: the VMM refused %s (HTTP %d): %s", what, status, fault); return -1; }
    }
    return 0;
}
