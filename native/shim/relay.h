/* What kiln-shim's two relays (relay.c, relay_exec.c) and the Firecracker client (firecracker.c) share. */
#ifndef KILN_RELAY_H
#define KILN_RELAY_H

#include <stddef.h>
#include "shim.h"

#define G_HIGH        (1 << 20)        /* a queue beyond this stops reading what fills it (backpressure) */
#define G_CONNECT_MS  10000            /* how long the VMM may take to create its control socket */
#define G_API_MS      5000             /* how long the VMM may take to answer one API request of its boot */
#define G_SAVE_MS     300000           /* ... one request of a snapshot's save (the guest's memory written whole) */
#define G_MAX_EXECS   32
/* The hard bound of every outgoing queue. Backpressure keeps each below G_HIGH plus what one pass brings (one read of
 * a connection's buffer, a stdin read, a few lines of our own); this bound is only the backstop behind it. */
#define G_QUEUE_MAX   (G_HIGH + 8 * (FRAME_HEADER + MAX_PAYLOAD))

/* A framed connection's input: room for two whole frames. */
struct gconn { int fd; size_t inlen; unsigned char in[2 * (FRAME_HEADER + MAX_PAYLOAD)]; };

/* channel.c: the relay's own stdout and stderr queues (a relay process is one mode: these are its stdio) */
extern struct buf g_out1, g_out2;
extern int g_tty; /* the relay's stdin is a terminal */

void gbuf_put(struct buf *b, const void *p, size_t n); /* exits 125 when out of memory */
int gbuf_flush(struct buf *b, int fd);
void gqueue_put(struct buf *b, const void *head, size_t hn, const void *body, size_t n);
void gframe(struct buf *b, int type, int stream, const void *p, size_t n);
void gframe_text(struct buf *b, int type, int stream, const char *text);
int gconn_read(struct gconn *c);
int gconn_frames(struct gconn *c, int (*fn)(void *, int, int, const unsigned char *, size_t), void *arg);
int read_file(const char *path, struct buf *b);
void raw_mode(int fd);
void send_winsize(struct buf *b, int type, int stream);
int all_signals_fd(void);
int g_connect_unix(const char *path);
int g_listen_unix(const char *path);

/* parse.c: the guest's payloads, read by length */
int dec_parse(const unsigned char *p, size_t n, unsigned long long max, unsigned long long *out);
int exit_parse(const unsigned char *p, size_t n, int *code, int *sig);
int hello_parse(const unsigned char *p, size_t n, long long *uptime);
void guest_text(const unsigned char *p, size_t len, char *out, size_t n);
void last_line(const char *path, char *out, size_t n);

/* channel.c: one line for the relay's stderr and the shim's problem log */
void say_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* firecracker.c; vmm_gone tells whether the VMM exited while its socket is awaited */
int send_api(const char *sock, const struct buf *reqs, int ms, int (*vmm_gone)(void));

/* snapshot.c: the VM's state into state_fd over QEMU's monitor at qmp_sock (migrate, then quit if asked); 0, or -1
 * with why. vm_cont: QMP cont. */
int snapshot_save(const char *qmp_sock, int state_fd, int timeout_ms, int quit, int ignore_shared, char *err,
                  size_t errn);
int vm_cont(const char *qmp_sock, int timeout_ms, int cont, const char *chardev_sock, char *err, size_t errn);
/* A snapshot's restore with mapped memory: QMP x-ignore-shared + migrate-incoming fd:N, until the VM runs. */
int vm_incoming(const char *qmp_sock, int fd, int timeout_ms, char *err, size_t errn);
/* The guest's memory file sized (a snapshot's ram file copied in when `from`); a template's memory written out. */
int ram_fill(int fd, long long bytes, char *err, size_t errn);
int ram_open(const char *from, long long bytes, int *out, char *err, size_t errn);
int ram_copy(int from, const char *to_path, long long bytes, char *err, size_t errn);
int ram_save(int m, const char *to, char *err, size_t errn);

#endif
