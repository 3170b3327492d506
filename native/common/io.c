#define _GNU_SOURCE
#include "io.h"
#include "protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

long long now_ms(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int buf_put(struct buf *b, const void *p, size_t n) {
    if (n == 0) return 0; /* an empty frame's payload: b->p may still be NULL, no memcpy to it (found by the fuzz test) */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->len + n) cap *= 2;
        char *q = realloc(b->p, cap);
        if (q == NULL) return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void buf_drop(struct buf *b, size_t n) {
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void buf_free(struct buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int buf_frame(struct buf *b, int type, int stream, const void *p, size_t n) {
    unsigned char h[FRAME_HEADER];
    frame_header(h, type, stream, n);
    if (buf_put(b, h, FRAME_HEADER) != 0) return -1;
    if (buf_put(b, p, n) != 0) { b->len -= FRAME_HEADER; return -1; } /* both or neither */
    return 0;
}
