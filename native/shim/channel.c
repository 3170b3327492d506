/*
 * The relays' plumbing (docs/vm.md): bounded outgoing queues, framed connections read by length, the relay's stdio
 * queues, unix sockets, the terminal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "relay.h"

struct buf g_out1, g_out2;
int g_tty;

void gbuf_put(struct buf *b, const void *p, size_t n) {
    if (buf_put(b, p, n) != 0) { note("out of memory"); _exit(125); }
}

/* Writes what fd takes now; -1 when fd is gone (the queue is then discarded). */
int gbuf_flush(struct buf *b, int fd) {
    while (b->len > 0) {
        ssize_t w = fd >= 0 ? send(fd, b->p, b->len, MSG_NOSIGNAL | MSG_DONTWAIT) : -1;
        if (w < 0 && errno == ENOTSOCK) w = write(fd, b->p, b->len);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
        if (w < 0) { b->len = 0; return -1; }
        memmove(b->p, b->p + w, b->len - (size_t)w);
        b->len -= (size_t)w;
    }
    return 0;
}

/* Appends head and body to an outgoing queue, both or neither: nothing passes G_QUEUE_MAX (see there). */
void gqueue_put(struct buf *b, const void *head, size_t hn, const void *body, size_t n) {
    static int noted;
    if (b->len + hn + n > G_QUEUE_MAX) {
        if (!noted) note("a queue reached %d bytes: %zu bytes dropped (and any later beyond it)", G_QUEUE_MAX, hn + n);
        noted = 1;
        return;
    }
    gbuf_put(b, head, hn);
    gbuf_put(b, body, n);
}

/* Frames share one 8-byte header: [type][flags=0][stream u16 BE][length u32 BE]. Attach frames have stream 0. */
void gframe(struct buf *b, int type, int stream, const void *p, size_t n) {
    unsigned char h[FRAME_HEADER];
    frame_header(h, type, stream, n);
    gqueue_put(b, h, FRAME_HEADER, p, n);
}

void gframe_text(struct buf *b, int type, int stream, const char *text) {
    gframe(b, type, stream, text, strlen(text));
}

/* Reads what is there into c->in; 0 ok, 1 at EOF, -1 on error. */
int gconn_read(struct gconn *c) {
    if (c->inlen == sizeof c->in) return 0;
    ssize_t r = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
    if (r < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (r == 0) return 1;
    c->inlen += (size_t)r;
    return 0;
}

/* Calls fn for every complete frame in c->in; -1 on a frame longer than MAX_PAYLOAD or one fn refuses (-1). */
int gconn_frames(struct gconn *c, int (*fn)(void *, int, int, const unsigned char *, size_t), void *arg) {
    size_t off = 0;
    struct frame f;
    int r;
    while ((r = frame_next(c->in + off, c->inlen - off, &f)) != 0) {
        if (r < 0 || fn(arg, f.type, f.stream, f.payload, f.len) != 0) return -1;
        off += FRAME_HEADER + f.len;
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
    return 0;
}

/* A line for the relay's stderr (the sandbox's log, as the guest's own output) and the shim's problem log. */
void say_err(const char *fmt, ...) {
    char line[900];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    gqueue_put(&g_out2, line, (size_t)n, "", 0);
    line[n - 1] = 0;
    note("%s", line);
}

int read_file(const char *path, struct buf *b) {
    char chunk[8192];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { int e = errno; if (close(fd) != 0 && r == 0) return -1; errno = e; return (int)r; }
        gbuf_put(b, chunk, (size_t)r);
    }
}

/* Puts a terminal on fd into raw mode: bytes pass unchanged (the guest's own terminal does the processing). */
void raw_mode(int fd) {
    struct termios t;
    if (tcgetattr(fd, &t) != 0) { note("tcgetattr: %s", strerror(errno)); return; }
    cfmakeraw(&t);
    if (tcsetattr(fd, TCSANOW, &t) != 0) note("tcsetattr: %s", strerror(errno));
}

void send_winsize(struct buf *b, int type, int stream) {
    struct winsize ws;
    char text[32];
    if (ioctl(0, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0) return;
    snprintf(text, sizeof text, "%u %u", ws.ws_row, ws.ws_col);
    gframe_text(b, type, stream, text);
}

/* Every catchable signal is blocked and read from the returned signalfd. */
int all_signals_fd(void) {
    sigset_t all;
    if (sigfillset(&all) != 0 || sigprocmask(SIG_BLOCK, &all, NULL) != 0) return -1;
    return signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
}

/*
 * The sockets the relay connects to as root are in the VMM's own directory (QEMU's control and QMP sockets,
 * Firecracker's API socket), where a VMM a guest took over could put a link to any socket of the host: the path is
 * opened O_PATH|O_NOFOLLOW (a link opens as itself, which no connect reaches) and connected through /proc/self/fd/N.
 */
int g_connect_unix(const char *path) {
    struct sockaddr_un a;
    int at = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (at < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { int e = errno; xclose(at); errno = e; return -1; }
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "/proc/self/fd/%d", at);
    int r = connect(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    xclose(at);
    if (r != 0) { xclose(fd); errno = e; return -1; }
    return fd;
}

int g_listen_unix(const char *path) {
    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if ((unlink(path) != 0 && errno != ENOENT) || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        chmod(path, 0600) != 0 || listen(fd, G_MAX_EXECS) != 0) { int e = errno; xclose(fd); errno = e; return -1; }
    return fd;
}
