/* I/O helpers shared by kiln-init and kiln-shim: every return value is the caller's to check. */
#ifndef KILN_IO_H
#define KILN_IO_H

#include <stddef.h>

/* A growable byte queue. */
struct buf { char *p; size_t len, cap; };

long long now_ms(void);                             /* CLOCK_MONOTONIC in ms; 0 if the clock fails */
int write_all(int fd, const void *p, size_t n);     /* 0, or -1 (errno) */
int set_nonblock(int fd);                           /* 0, or -1 (errno) */
int buf_put(struct buf *b, const void *p, size_t n); /* 0, or -1 when out of memory (b unchanged) */
void buf_drop(struct buf *b, size_t n);             /* removes the first n bytes (n <= b->len) */
void buf_free(struct buf *b);
/* Appends one frame (header + payload) to b: 0, or -1 when out of memory (b unchanged). */
int buf_frame(struct buf *b, int type, int stream, const void *p, size_t n);

#endif
