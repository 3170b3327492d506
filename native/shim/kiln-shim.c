/*
 * kiln-shim: a tiny per-sandbox monitor (like podman's conmon or containerd-shim).
 *
 *   kiln-shim --dir DIR [--tty] [--stdin] [--wait-attach SECS] [--log FILE] -- CMD ARGS...
 *
 * Detaches from its caller (fork, setsid, fork), becomes a child subreaper, listens on DIR/attach.sock, runs CMD,
 * writes CMD's output to a Docker json-file log and to attach clients, and records CMD's exit in DIR/exit.json.
 * The protocol and files are specified in docs/shim.md. Static, no dependencies beyond libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN   16384     /* a partial line is logged as its own record when it reaches this size */
#define CLIENT_OUT_MAX (1 << 20) /* output queued for one attach client; when full, CMD's output waits (backpressure) */
#define STALL_MS       5000      /* ... but a client that stays full this long without taking anything is dropped */
#define FRAME_IN_MAX   65536     /* largest frame payload a client may send */
#define STDIN_MAX      (1 << 20) /* stdin queued for CMD; clients are not read while it has no room for a frame */
#define MAX_CLIENTS    32
#define EXIT_SLACK     32        /* room kept beyond CLIENT_OUT_MAX for the exit frame */
#define DRAIN_MS       2000      /* after CMD exits, output is read until EOF or until it has been quiet this long */
#define FLUSH_MS       2000      /* at the end, clients that take nothing of their last frames this long are dropped */
#define EXIT_ROOM      160       /* exit.json's room, written at set-up: the record must fit a full disk (finish) */

enum { F_STDIN = 0, F_STDOUT = 1, F_STDERR = 2, F_EXIT = 3, F_CLOSE_STDIN = 4, F_RESIZE = 5, F_SIGNAL = 6 };

struct stream { int fd; int type; const char *name; size_t len; char buf[LINE_MAX_LEN]; };
struct client {
    int fd, rd_closed;
    long long full_since; /* when its output queue last became full; 0 when it has room */
    size_t inlen, outlen;
    unsigned char in[8 + FRAME_IN_MAX];
    char *out;
};

static const char *opt_dir, *opt_log;
static int opt_tty, opt_stdin;
static long opt_wait = -1;
static char **cmd_argv;

static int log_fd = -1, listen_fd = -1, sig_fd = -1, cwd_fd = -1;
static int exit_fd = -1; /* exit.json.tmp, its room taken at set-up (see EXIT_ROOM) */
static int stdin_fd = -1;                                /* our end of CMD's stdin: pipe write end, or the pty master */
static int pty_master = -1;                              /* kept open until CMD is reaped: closing it hangs CMD up */
static int child_in = -1, child_out = -1, child_err = -1; /* CMD's ends, closed here once CMD is started */
static int stdin_closed;
static char stdin_q[STDIN_MAX];
static size_t stdin_len;
static struct stream out_s, err_s; /* set up in setup(); zero-initialised so the 32 KiB stay out of the binary */
static struct client clients[MAX_CLIENTS];
static int nclients;
static pid_t cmd_pid = -1;
static long long output_ms; /* when output was last read (or could not be, for backpressure) */
static int cmd_exited, exit_code, exit_signal;
static char finished_at[64];
static char errmsg[512];

static long long now_ms(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 UTC time with nanoseconds, e.g. 2026-11-27T10:00:00.123456789Z */
static void rfc3339(char *out, size_t n) {
    struct timespec ts;
    struct tm tm;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL) {
        snprintf(out, n, "1970-01-01T00:00:00.000000000Z");
        return;
    }
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%09ldZ", (long)ts.tv_nsec);
}

static int write_all(int fd, const void *p, size_t n) {
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

/* After readiness our stderr is /dev/null: problems are appended to DIR/shim.log (the cwd is DIR by then). */
__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...) {
    char line[1024], ts[64];
    va_list ap;
    rfc3339(ts, sizeof ts);
    int k = snprintf(line, sizeof line, "%s ", ts);
    va_start(ap, fmt);
    vsnprintf(line + k, sizeof line - (size_t)k - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    line[len++] = '\n';
    int fd = open("shim.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return; /* nowhere left to report to */
    if (write_all(fd, line, len) != 0) { /* as above */ }
    if (close(fd) != 0) { /* as above */ }
}

static void xclose(int fd) {
    if (fd >= 0 && close(fd) != 0) note("close(%d): %s", fd, strerror(errno));
}

static int set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Writes NAME via NAME.tmp + rename, so readers see the whole file or none. */
static int write_atomic(const char *name, const char *text) {
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    if (write_all(fd, text, strlen(text)) != 0) {
        int e = errno;
        if (close(fd) != 0) { /* keep the first error */ }
        if (unlink(tmp) != 0) { /* keep the first error */ }
        errno = e;
        return -1;
    }
    if (close(fd) != 0) return -1;
    return rename(tmp, name);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the byte at p does not start one. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    unsigned c = p[0], cp, min;
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* Appends one json-file record. Control characters become \u00XX; invalid UTF-8 bytes become \ufffd (as Docker). */
static void log_record(const struct stream *s, const char *data, size_t n) {
    static char rec[LINE_MAX_LEN * 6 + 160];
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)data;
    char ts[64];
    size_t o = 0;
    memcpy(rec, "{\"log\":\"", 8);
    o = 8;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = utf8_seq(p + i, n - i);
        if (len == 0) { memcpy(rec + o, "\\ufffd", 6); o += 6; i++; continue; }
        if (len > 1) { memcpy(rec + o, p + i, len); o += len; i += len; continue; }
        i++;
        if (c == '"' || c == '\\') { rec[o++] = '\\'; rec[o++] = (char)c; }
        else if (c == '\n') { rec[o++] = '\\'; rec[o++] = 'n'; }
        else if (c == '\r') { rec[o++] = '\\'; rec[o++] = 'r'; }
        else if (c == '\t') { rec[o++] = '\\'; rec[o++] = 't'; }
        else if (c < 0x20 || c == 0x7f) {
            memcpy(rec + o, "\\u00", 4);
            rec[o + 4] = hex[c >> 4];
            rec[o + 5] = hex[c & 15];
            o += 6;
        } else rec[o++] = (char)c;
    }
    rfc3339(ts, sizeof ts);
    o += (size_t)snprintf(rec + o, sizeof rec - o, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", s->name, ts);
    if (write_all(log_fd, rec, o) != 0) note("writing the log: %s", strerror(errno));
}

static void client_drop(struct client *c, const char *why) {
    if (c->fd < 0) return;
    if (why) note("attach client dropped: %s", why);
    xclose(c->fd);
    c->fd = -1;
    free(c->out);
    c->out = NULL;
}

static void put_frame(char *dst, int type, const void *p, size_t n) {
    dst[0] = (char)type;
    dst[1] = dst[2] = dst[3] = 0;
    dst[4] = (char)(n >> 24); dst[5] = (char)(n >> 16); dst[6] = (char)(n >> 8); dst[7] = (char)n;
    memcpy(dst + 8, p, n);
}

static void broadcast(int type, const void *p, size_t n) {
    for (int i = 0; i < nclients; i++) {
        struct client *c = &clients[i];
        if (c->fd < 0) continue;
        size_t limit = CLIENT_OUT_MAX + (type == F_EXIT ? EXIT_SLACK : 0); /* the exit frame always fits */
        if (c->outlen + 8 + n > limit) { client_drop(c, "not reading its output"); continue; }
        put_frame(c->out + c->outlen, type, p, n);
        c->outlen += 8 + n;
    }
}

static int client_full(const struct client *c) {
    return c->fd >= 0 && c->outlen + 8 + LINE_MAX_LEN > CLIENT_OUT_MAX;
}

/* Sends what the client's socket takes; returns the number of bytes sent. */
static size_t client_flush(struct client *c) {
    ssize_t w = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) client_drop(c, errno == EPIPE ? NULL : strerror(errno));
        return 0;
    }
    memmove(c->out, c->out + w, c->outlen - (size_t)w);
    c->outlen -= (size_t)w;
    return (size_t)w;
}

static void stdin_close(void) {
    stdin_closed = 1;
    if (opt_tty) {
        struct termios t;
        char eof = 4; /* ^D unless the terminal says otherwise */
        if (tcgetattr(stdin_fd, &t) == 0) eof = (char)t.c_cc[VEOF];
        if (stdin_len < STDIN_MAX) stdin_q[stdin_len++] = eof;
    } else if (stdin_len == 0 && stdin_fd >= 0) {
        xclose(stdin_fd);
        stdin_fd = -1;
    }
}

static void stdin_flush(void) {
    ssize_t w = write(stdin_fd, stdin_q, stdin_len);
    if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        if (errno != EPIPE && errno != EIO) note("writing stdin: %s", strerror(errno));
        stdin_len = 0; /* CMD no longer reads its stdin: discard */
    } else {
        memmove(stdin_q, stdin_q + w, stdin_len - (size_t)w);
        stdin_len -= (size_t)w;
    }
    if (stdin_len == 0 && stdin_closed && !opt_tty && stdin_fd >= 0) {
        xclose(stdin_fd);
        stdin_fd = -1;
    }
}

static void send_signal(int sig) {
    if (cmd_pid <= 0 || cmd_exited) return;
    if (kill(-cmd_pid, sig) == 0) return;
    if (errno == ESRCH && kill(cmd_pid, sig) == 0) return; /* CMD has not made its process group yet */
    note("kill(%d, %d): %s", (int)cmd_pid, sig, strerror(errno));
}

static void client_frame(int type, const unsigned char *p, size_t n) {
    char text[32];
    size_t k = n < sizeof text - 1 ? n : sizeof text - 1;
    memcpy(text, p, k);
    text[k] = 0;
    switch (type) {
    case F_STDIN:
        if (opt_stdin && !stdin_closed && stdin_fd >= 0) {
            if (stdin_len + n > STDIN_MAX) { note("stdin overflow: %zu bytes dropped", n); break; } /* unreachable */
            memcpy(stdin_q + stdin_len, p, n);
            stdin_len += n;
        }
        break;
    case F_CLOSE_STDIN:
        if (opt_stdin && !stdin_closed && stdin_fd >= 0) stdin_close();
        break;
    case F_RESIZE: {
        unsigned rows, cols;
        struct winsize ws;
        if (!opt_tty || sscanf(text, "%u %u", &rows, &cols) != 2 || rows > 65535 || cols > 65535) break;
        memset(&ws, 0, sizeof ws);
        ws.ws_row = (unsigned short)rows;
        ws.ws_col = (unsigned short)cols;
        if (ioctl(pty_master, TIOCSWINSZ, &ws) != 0) note("TIOCSWINSZ: %s", strerror(errno));
        break;
    }
    case F_SIGNAL: {
        int sig = atoi(text);
        if (sig > 0 && sig < 65) send_signal(sig);
        break;
    }
    default:
        break; /* unknown frame types are ignored, so the protocol can grow */
    }
}

static void client_read(struct client *c) {
    if (stdin_len + sizeof c->in > STDIN_MAX) return; /* no room for what one read may bring: wait for CMD */
    ssize_t r = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
    if (r < 0) {
        if (errno != EAGAIN && errno != EINTR) client_drop(c, strerror(errno));
        return;
    }
    if (r == 0) { c->rd_closed = 1; return; } /* half-closed: it still receives output */
    c->inlen += (size_t)r;
    size_t off = 0;
    while (c->inlen - off >= 8) {
        const unsigned char *h = c->in + off;
        uint32_t len = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
        if (len > FRAME_IN_MAX) { client_drop(c, "frame too large"); return; }
        if (c->inlen - off < 8 + (size_t)len) break;
        client_frame(h[0], h + 8, len);
        off += 8 + (size_t)len;
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
}

static void client_accept(void) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR) note("accept: %s", strerror(errno));
        return;
    }
    if (nclients == MAX_CLIENTS) { note("attach client refused: %d clients", MAX_CLIENTS); xclose(fd); return; }
    struct client *c = &clients[nclients];
    c->out = malloc(CLIENT_OUT_MAX + EXIT_SLACK);
    if (c->out == NULL) { note("attach client refused: out of memory"); xclose(fd); return; }
    c->fd = fd;
    c->rd_closed = 0;
    c->full_since = 0;
    c->inlen = c->outlen = 0;
    nclients++;
}

static void stream_read(struct stream *s) {
    ssize_t r = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r <= 0) { /* EOF; EIO is how a pty master reports that the last slave fd closed */
        if (r < 0 && errno != EIO) note("reading %s: %s", s->name, strerror(errno));
        if (s->len > 0) log_record(s, s->buf, s->len);
        s->len = 0;
        if (s->fd == stdin_fd) stdin_fd = -1;
        if (s->fd != pty_master) xclose(s->fd);
        s->fd = -1;
        return;
    }
    output_ms = now_ms();
    broadcast(s->type, s->buf + s->len, (size_t)r);
    s->len += (size_t)r;
    char *p = s->buf, *end = s->buf + s->len, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        log_record(s, p, (size_t)(nl + 1 - p));
        p = nl + 1;
    }
    s->len = (size_t)(end - p);
    memmove(s->buf, p, s->len);
    if (s->len == sizeof s->buf) { log_record(s, s->buf, s->len); s->len = 0; }
}

static void child_fail(const char *what, int code) {
    char msg[512];
    int e = errno;
    int n = snprintf(msg, sizeof msg, "kiln-shim: %s: %s\n", what, strerror(e));
    if (write_all(2, msg, (size_t)n) != 0) { /* stderr is gone: only the exit code tells */ }
    _exit(code);
}

/* In the forked child: become CMD. Exit codes as Docker's: 126 not executable, 127 not found, 125 set-up failed. */
static void exec_cmd(void) {
    sigset_t none;
    if (dup2(child_in, 0) < 0 || dup2(child_out, 1) < 0 || dup2(child_err, 2) < 0) _exit(125);
    for (int sig = 1; sig < 65; sig++) /* ignored signals survive exec: CMD starts with every default */
        if (sig != SIGKILL && sig != SIGSTOP && signal(sig, SIG_DFL) == SIG_ERR && errno != EINVAL)
            child_fail("signal", 125);
    if (sigemptyset(&none) != 0 || sigprocmask(SIG_SETMASK, &none, NULL) != 0) child_fail("sigprocmask", 125);
    if (opt_tty) {
        if (setsid() < 0) child_fail("setsid", 125);
        if (ioctl(0, TIOCSCTTY, 0) != 0) child_fail("TIOCSCTTY", 125);
    } else if (setpgid(0, 0) != 0) child_fail("setpgid", 125);
    if (fchdir(cwd_fd) != 0) child_fail("fchdir", 125);
    execvp(cmd_argv[0], cmd_argv);
    child_fail(cmd_argv[0], errno == ENOENT ? 127 : 126);
}

static int start_cmd(void) {
    char text[128], ts[64];
    pid_t p = fork();
    if (p < 0) { note("fork: %s", strerror(errno)); return -1; }
    if (p == 0) exec_cmd();
    cmd_pid = p;
    rfc3339(ts, sizeof ts);
    if (!opt_tty && setpgid(p, p) != 0 && errno != EACCES && errno != ESRCH) note("setpgid: %s", strerror(errno));
    if (child_err != child_out) xclose(child_err);
    if (child_in != child_out) xclose(child_in);
    xclose(child_out);
    child_in = child_out = child_err = -1;
    snprintf(text, sizeof text, "{\"pid\":%d,\"startedAt\":\"%s\"}\n", (int)p, ts);
    if (write_atomic("started.json", text) != 0) note("writing started.json: %s", strerror(errno));
    return 0;
}

static void reap(void) {
    struct signalfd_siginfo si;
    ssize_t r;
    while ((r = read(sig_fd, &si, sizeof si)) == (ssize_t)sizeof si) { /* coalesced: waitpid below finds them all */ }
    if (r < 0 && errno != EAGAIN && errno != EINTR) note("reading signalfd: %s", strerror(errno));
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p < 0 && errno == EINTR) continue;
        if (p < 0 && errno != ECHILD) note("waitpid: %s", strerror(errno));
        if (p <= 0) return;
        if (p != cmd_pid) continue; /* an orphan we adopted as subreaper */
        cmd_exited = 1;
        exit_signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        exit_code = WIFSIGNALED(st) ? 128 + exit_signal : WEXITSTATUS(st);
        rfc3339(finished_at, sizeof finished_at);
    }
}

static void finish(void) {
    char text[EXIT_ROOM], code[16];
    if (out_s.len > 0) log_record(&out_s, out_s.buf, out_s.len);
    if (err_s.len > 0) log_record(&err_s, err_s.buf, err_s.len);
    int len = snprintf(text, sizeof text, "{\"exitCode\":%d,\"signal\":%d,\"finishedAt\":\"%s\"}\n",
                       exit_code, exit_signal, finished_at);
    /* Into the room taken at set-up, then renamed: overwriting blocks the file already has needs no free space, so
     * the exit is recorded on a full disk too (without it kilnd could only guess the status). */
    if (lseek(exit_fd, 0, SEEK_SET) != 0 || write_all(exit_fd, text, (size_t)len) != 0 || ftruncate(exit_fd, len) != 0
        || close(exit_fd) != 0 || rename("exit.json.tmp", "exit.json") != 0)
        note("writing exit.json: %s", strerror(errno));
    exit_fd = -1;
    snprintf(code, sizeof code, "%d", exit_code);
    broadcast(F_EXIT, code, strlen(code));
    long long deadline = now_ms() + FLUSH_MS;
    xclose(pty_master); /* CMD is reaped: nothing left to hang up */
    for (;;) {
        struct pollfd pfd[MAX_CLIENTS];
        int n = 0;
        for (int i = 0; i < nclients; i++) {
            struct client *c = &clients[i];
            if (c->fd >= 0 && c->outlen == 0) client_drop(c, NULL);
            pfd[i].fd = clients[i].fd;
            pfd[i].events = POLLOUT;
            pfd[i].revents = 0;
            n += clients[i].fd >= 0;
        }
        long long left = deadline - now_ms();
        if (n == 0 || left <= 0) break;
        if (poll(pfd, (nfds_t)nclients, (int)left) < 0 && errno != EINTR) { note("poll: %s", strerror(errno)); break; }
        for (int i = 0; i < nclients; i++)
            if (clients[i].fd >= 0 && pfd[i].revents && client_flush(&clients[i]) > 0) deadline = now_ms() + FLUSH_MS;
    }
    for (int i = 0; i < nclients; i++) client_drop(&clients[i], "did not take its last frames in time");
    if (unlink("attach.sock") != 0) note("removing attach.sock: %s", strerror(errno));
    xclose(log_fd);
}

static int fail(const char *what) {
    snprintf(errmsg, sizeof errmsg, "kiln-shim: %s: %s", what, strerror(errno));
    return -1;
}

/* Everything that can fail before readiness is reported to the launching process through errmsg. */
static int setup(void) {
    char text[32];
    struct sockaddr_un addr;
    sigset_t set;
    out_s.fd = err_s.fd = -1;
    out_s.type = F_STDOUT; out_s.name = "stdout";
    err_s.type = F_STDERR; err_s.name = "stderr";
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul < 0) return fail("/dev/null");
    if (dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0) return fail("dup2");
    if (nul > 2 && close(nul) != 0) return fail("close");
    umask(077);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return fail("PR_SET_CHILD_SUBREAPER");
    if (signal(SIGTERM, SIG_IGN) == SIG_ERR || signal(SIGINT, SIG_IGN) == SIG_ERR ||
        signal(SIGHUP, SIG_IGN) == SIG_ERR || signal(SIGPIPE, SIG_IGN) == SIG_ERR) return fail("signal");
    if (sigemptyset(&set) != 0 || sigaddset(&set, SIGCHLD) != 0 || sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return fail("sigprocmask");
    if ((sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) return fail("signalfd");
    if ((cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) return fail("opening the working directory");
    if (opt_log && (log_fd = open(opt_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0) return fail(opt_log);
    if (chdir(opt_dir) != 0) return fail(opt_dir);
    if (!opt_log && (log_fd = open("log.json", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return fail("log.json");
    if (opt_tty) {
        int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m < 0) return fail("posix_openpt");
        out_s.fd = stdin_fd = pty_master = m;
        if (grantpt(m) != 0 || unlockpt(m) != 0) return fail("grantpt/unlockpt");
        const char *name = ptsname(m);
        if (name == NULL) return fail("ptsname");
        if ((child_out = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) return fail(name);
        child_in = child_err = child_out;
        if (set_nonblock(m) != 0) return fail("O_NONBLOCK");
    } else {
        int o[2], e[2], in[2];
        if (pipe2(o, O_CLOEXEC) != 0 || pipe2(e, O_CLOEXEC) != 0) return fail("pipe");
        out_s.fd = o[0]; child_out = o[1];
        err_s.fd = e[0]; child_err = e[1];
        if (set_nonblock(o[0]) != 0 || set_nonblock(e[0]) != 0) return fail("O_NONBLOCK");
        if (opt_stdin) {
            if (pipe2(in, O_CLOEXEC) != 0) return fail("pipe");
            child_in = in[0]; stdin_fd = in[1];
            if (set_nonblock(stdin_fd) != 0) return fail("O_NONBLOCK");
        } else if ((child_in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) return fail("/dev/null");
    }
    if (unlink("attach.sock") != 0 && errno != ENOENT) return fail("removing a stale attach.sock");
    if ((listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) return fail("socket");
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, "attach.sock"); /* relative to DIR: no sun_path length limit on DIR */
    if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0) return fail("binding attach.sock");
    if (chmod("attach.sock", 0600) != 0) return fail("chmod attach.sock");
    if (listen(listen_fd, MAX_CLIENTS) != 0) return fail("listen");
    char room[EXIT_ROOM];
    memset(room, ' ', sizeof room);
    if ((exit_fd = open("exit.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0
        || write_all(exit_fd, room, sizeof room) != 0) return fail("exit.json.tmp");
    snprintf(text, sizeof text, "%d\n", (int)getpid());
    if (write_atomic("shim.pid", text) != 0) return fail("writing shim.pid");
    return 0;
}

/* The earliest of the two deadlines, either of which may be -1 (none). */
static long long earliest(long long a, long long b) {
    return a < 0 ? b : b < 0 || a < b ? a : b;
}

static void run(void) {
    long long start_at = opt_wait >= 0 ? now_ms() + opt_wait * 1000 : -1;
    for (;;) {
        long long now = now_ms(), deadline = -1;
        if (cmd_pid < 0 && !cmd_exited) {
            if (opt_wait < 0 || nclients > 0 || now >= start_at) {
                if (start_cmd() != 0) { cmd_exited = 1; exit_code = 125; rfc3339(finished_at, sizeof finished_at); }
                output_ms = now;
            } else deadline = start_at;
        }
        /* backpressure: while a client has no room, CMD's output stays in its pipe; a client stalled too long goes */
        int paused = 0;
        for (int i = 0; i < nclients; i++) {
            struct client *c = &clients[i];
            if (!client_full(c)) { c->full_since = 0; continue; }
            if (c->full_since == 0) c->full_since = now;
            if (now - c->full_since >= STALL_MS) { client_drop(c, "took no output for 5 s"); continue; }
            paused = 1;
            deadline = earliest(deadline, c->full_since + STALL_MS);
        }
        if (paused) output_ms = now; /* time spent paused does not count as quiet */
        if (cmd_exited) {
            if ((out_s.fd < 0 && err_s.fd < 0) || now - output_ms >= DRAIN_MS) return;
            deadline = earliest(deadline, output_ms + DRAIN_MS);
        }

        struct pollfd pfd[5 + MAX_CLIENTS];
        int room = stdin_len + sizeof clients[0].in <= STDIN_MAX, n = nclients;
        pfd[0] = (struct pollfd){ listen_fd, POLLIN, 0 };
        pfd[1] = (struct pollfd){ sig_fd, POLLIN, 0 };
        pfd[2] = (struct pollfd){ paused ? -1 : out_s.fd, POLLIN, 0 };
        pfd[3] = (struct pollfd){ paused ? -1 : err_s.fd, POLLIN, 0 };
        pfd[4] = (struct pollfd){ stdin_len > 0 ? stdin_fd : -1, POLLOUT, 0 };
        for (int i = 0; i < n; i++) {
            struct client *c = &clients[i];
            short ev = (short)((c->rd_closed || !room ? 0 : POLLIN) | (c->outlen ? POLLOUT : 0));
            pfd[5 + i] = (struct pollfd){ c->fd, ev, 0 };
        }
        int timeout = deadline < 0 ? -1 : deadline <= now ? 0 : (int)(deadline - now);
        if (poll(pfd, (nfds_t)(5 + n), timeout) < 0) {
            if (errno != EINTR) { note("poll: %s", strerror(errno)); return; }
            continue;
        }
        if (pfd[1].revents) reap();
        if (pfd[2].revents && out_s.fd >= 0) stream_read(&out_s);
        if (pfd[3].revents && err_s.fd >= 0) stream_read(&err_s);
        if (pfd[4].revents && stdin_fd >= 0 && stdin_len > 0) stdin_flush();
        for (int i = 0; i < n; i++) {
            struct client *c = &clients[i];
            short ev = pfd[5 + i].revents;
            if (c->fd >= 0 && (ev & POLLIN)) client_read(c);
            if (c->fd >= 0 && (ev & POLLOUT) && c->outlen) client_flush(c);
            if (c->fd >= 0 && (ev & (POLLHUP | POLLERR)) && !(ev & POLLIN)) client_drop(c, NULL);
        }
        int k = 0; /* compact: keep live clients in order */
        for (int i = 0; i < nclients; i++)
            if (clients[i].fd >= 0) clients[k++] = clients[i];
        nclients = k;
        if (pfd[0].revents) client_accept();
    }
}

/* Sends errmsg to the launcher, which prints it as its one line on stderr, and exits. */
static void report_failure(int fd, int ignored) {
    size_t n = strlen(errmsg);
    (void)ignored;
    errmsg[n++] = '\n';
    if (write_all(fd, errmsg, n) != 0) { /* the launcher is gone: nobody to tell */ }
    _exit(1);
}

static int usage(const char *why) {
    fprintf(stderr, "kiln-shim: %s\nusage: kiln-shim --dir DIR [--tty] [--stdin] [--wait-attach SECS] [--log FILE]"
                    " -- CMD ARGS...\n", why);
    return 2;
}

/* ======================================================================================================== *
 * Guest relays (docs/vm.md). kilnd runs a VM as a normal shim whose CMD is this same binary in a relay mode:
 *
 *   kiln-shim --relay-vm --dir VMDIR --spec FILE [--hello-timeout SECS] [--netns PATH] -- qemu-system-x86_64 ARGS...
 *   kiln-shim --relay-vm --dir VMDIR --spec FILE [...] --api-sock SOCK --api-requests FILE --listen SOCK
 *             --console-stdout -- firecracker ARGS...
 *   kiln-shim --relay-exec EXEC_SOCK FILE
 *
 * --relay-vm starts the VMM, speaks the guest protocol (docs/guest-protocol.md) over the VMM's virtio-serial
 * socket VMDIR/ctl.sock, maps the guest's main process (stream 0) onto its own stdin/stdout/stderr (so the outer
 * shim logs and attaches it as any command), forwards the signals it receives to that process, serves execs on
 * VMDIR/exec.sock, and exits as the guest's process exited once the VMM is gone. --relay-exec is one exec: it
 * sends FILE as an EXEC request to EXEC_SOCK and maps that process's stream onto its own stdio, the same way.
 * With --netns the VMM (only it: the relay stays where it is) joins that network namespace before it starts, so it
 * opens the sandbox's TAP device there (docs/networking.md).
 *
 * For Firecracker (docs/vm.md) three things differ, all before the first frame: --listen makes the control channel
 * a socket the relay listens on (Firecracker's hybrid vsock connects the guest's port 1024 to it) instead of one
 * it connects to; --api-sock/--api-requests send the VMM's boot sequence, NUL-terminated HTTP requests written by
 * kilnd, each on its own connection; --console-stdout puts the VMM's stdout (the guest's serial console) in
 * boot.log. From the first frame on, both VMMs are relayed by the same code.
 * ======================================================================================================== */

enum { G_HELLO = 1, G_START, G_EXEC, G_STDIN, G_STDIN_CLOSE, G_STDOUT, G_STDERR, G_EXIT, G_SIGNAL, G_RESIZE,
       G_ERROR, G_STARTED, G_BYE };
#define F_EXEC        7                /* exec.sock, client → relay: the first frame, a process spec */
#define G_MAX_PAYLOAD 65536
#define G_HIGH        (1 << 20)        /* a queue beyond this stops reading what fills it (backpressure) */
#define G_CONNECT_MS  10000            /* how long the VMM may take to create its control socket */
#define G_POWEROFF_MS 10000            /* after the guest reported the exit: time for the VMM to stop */
#define G_MAX_EXECS   32
#define G_API_MS      5000             /* how long the VMM may take to answer one API request */
/* The hard bound of every outgoing queue. Backpressure keeps each below G_HIGH plus what one pass brings (one read of
 * a connection's buffer, a stdin read, a few lines of our own); this bound is only the backstop behind it. */
#define G_QUEUE_MAX   (G_HIGH + 8 * (8 + G_MAX_PAYLOAD))
#define G_ERROR_KEEP  300              /* bytes of the guest's ERROR text kept for the report */

struct gbuf { char *p; size_t len, cap; };
struct gconn { int fd; size_t inlen; unsigned char in[2 * (8 + G_MAX_PAYLOAD)]; };
struct gexec { struct gconn c; struct gbuf out; int stream, done; };

static int g_ctl = -1, g_ctl_listen = -1, g_exec_listen = -1, g_stdin_open = 1, g_tty;
static struct gconn g_ctlc;
static struct gbuf g_ctl_out, g_out1, g_out2;
static struct gexec *g_execs[G_MAX_EXECS];
static pid_t g_vmm = -1;
static int g_vmm_status = -1, g_exit_code = -1; /* g_exit_code: 0..255 once known */
static long long g_t0;

static void gbuf_put(struct gbuf *b, const void *p, size_t n) {
    if (n == 0) return; /* an empty frame's payload: b->p may still be NULL, no memcpy to it (found by the fuzz test) */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->len + n) cap *= 2;
        char *q = realloc(b->p, cap);
        if (q == NULL) { note("out of memory"); _exit(125); }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* Writes what fd takes now; -1 when fd is gone (the queue is then discarded). */
static int gbuf_flush(struct gbuf *b, int fd) {
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
static void gqueue_put(struct gbuf *b, const void *head, size_t hn, const void *body, size_t n) {
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
static void gframe(struct gbuf *b, int type, int stream, const void *p, size_t n) {
    unsigned char h[8] = { (unsigned char)type, 0, (unsigned char)(stream >> 8), (unsigned char)stream,
                           (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                           (unsigned char)n };
    gqueue_put(b, h, 8, p, n);
}

static void gframe_text(struct gbuf *b, int type, int stream, const char *text) {
    gframe(b, type, stream, text, strlen(text));
}

/* Reads what is there into c->in; 0 ok, 1 at EOF, -1 on error. */
static int gconn_read(struct gconn *c) {
    if (c->inlen == sizeof c->in) return 0;
    ssize_t r = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
    if (r < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (r == 0) return 1;
    c->inlen += (size_t)r;
    return 0;
}

/* Calls fn for every complete frame in c->in; -1 on a frame longer than G_MAX_PAYLOAD or one fn refuses (-1). */
static int gconn_frames(struct gconn *c, int (*fn)(void *, int, int, const unsigned char *, size_t), void *arg) {
    size_t off = 0;
    while (c->inlen - off >= 8) {
        unsigned char *h = c->in + off;
        uint32_t n = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
        if (n > G_MAX_PAYLOAD) return -1;
        if (c->inlen - off < 8 + (size_t)n) break;
        if (fn(arg, h[0], h[2] << 8 | h[3], h + 8, n) != 0) return -1;
        off += 8 + (size_t)n;
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
    return 0;
}

static int read_file(const char *path, struct gbuf *b) {
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
static void raw_mode(int fd) {
    struct termios t;
    if (tcgetattr(fd, &t) != 0) { note("tcgetattr: %s", strerror(errno)); return; }
    cfmakeraw(&t);
    if (tcsetattr(fd, TCSANOW, &t) != 0) note("tcsetattr: %s", strerror(errno));
}

static void send_winsize(struct gbuf *b, int type, int stream) {
    struct winsize ws;
    char text[32];
    if (ioctl(0, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0) return;
    snprintf(text, sizeof text, "%u %u", ws.ws_row, ws.ws_col);
    gframe_text(b, type, stream, text);
}

/* Every catchable signal is blocked and read from the returned signalfd. */
static int all_signals_fd(void) {
    sigset_t all;
    if (sigfillset(&all) != 0 || sigprocmask(SIG_BLOCK, &all, NULL) != 0) return -1;
    return signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
}

/*
 * Parsers of the guest's payloads. Every byte from the guest is read by its length: nothing here expects a NUL, so no
 * string function (strlen, atoi, sscanf, strchr...) ever runs on guest bytes.
 */

/* The unsigned decimal p[0..n): digits only (no sign, no space), at most max; 0, or -1 when it is not one. */
static int dec_parse(const unsigned char *p, size_t n, unsigned long long max, unsigned long long *out) {
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
static int exit_parse(const unsigned char *p, size_t n, int *code, int *sig) {
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
static int hello_parse(const unsigned char *p, size_t n, long long *uptime) {
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
static void guest_text(const unsigned char *p, size_t len, char *out, size_t n) {
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

static void say_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say_err(const char *fmt, ...) {
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

/* The last non-empty line of a log file (for "why did the VM stop"), escaped by guest_text, or "" */
static void last_line(const char *path, char *out, size_t n) {
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

static void timings(const char *phase, long long *slot) {
    (void)phase;
    *slot = now_ms() - g_t0;
}

static long long g_ms_connected = -1, g_ms_hello = -1, g_ms_started = -1, g_ms_exit = -1, g_ms_stopped = -1;
static long long g_guest_uptime = -1;

static void write_timings(void) {
    char text[400];
    snprintf(text, sizeof text, "{\"vmmSocketMs\":%lld,\"helloMs\":%lld,\"guestUptimeAtHelloMs\":%lld,"
             "\"startedMs\":%lld,\"exitMs\":%lld,\"stoppedMs\":%lld}\n", g_ms_connected, g_ms_hello,
             g_guest_uptime, g_ms_started, g_ms_exit, g_ms_stopped);
    if (write_atomic("timings.json", text) != 0) note("writing timings.json: %s", strerror(errno));
}

static struct gexec *exec_of(int stream) {
    for (int i = 0; i < G_MAX_EXECS; i++)
        if (g_execs[i] && g_execs[i]->stream == stream) return g_execs[i];
    return NULL;
}

static int g_hello_seen, g_main_ended; /* g_main_ended: the guest's EXIT or ERROR for stream 0 was accepted */
static char g_error[G_ERROR_KEEP];
static size_t g_error_len;

/*
 * One frame from the guest, every field checked (docs/guest-protocol.md): a frame of a known type in the wrong
 * place, or with a payload that is not what its type says, is a protocol violation (-1: the VM is stopped); a frame
 * of an unknown type is ignored, so the protocol can grow. Stream 0 takes one EXIT (or ERROR), answered with one BYE;
 * everything on stream 0 after it is ignored, and the stop deadline runs from it (relay_vm).
 */
static int guest_frame(void *arg, int type, int stream, const unsigned char *p, size_t n) {
    int code = 0, sig = 0;
    unsigned long long pid;
    (void)arg;
    switch (type) {
    case G_HELLO: {
        long long uptime = -1;
        if (stream != 0 || hello_parse(p, n, &uptime) != 0) return -1;
        if (g_hello_seen) return 0; /* a second HELLO says nothing new */
        g_hello_seen = 1;
        g_guest_uptime = uptime;
        timings("hello", &g_ms_hello);
        return 0;
    }
    case G_ERROR: /* may come before HELLO: the guest refuses the host's version */
        if (stream != 0) return -1;
        break;
    case G_STDOUT: case G_STDERR:
        if (!g_hello_seen) return -1;
        break;
    case G_EXIT:
        if (!g_hello_seen || exit_parse(p, n, &code, &sig) != 0) return -1;
        break;
    case G_STARTED:
        if (!g_hello_seen || dec_parse(p, n, 0x7fffffff, &pid) != 0 || pid == 0) return -1;
        break;
    case G_START: case G_EXEC: case G_STDIN: case G_STDIN_CLOSE: case G_SIGNAL: case G_RESIZE: case G_BYE:
        return -1; /* the host's frames, never the guest's */
    default:
        return 0;
    }
    if (stream == 0) {
        if (g_main_ended) return 0;
        switch (type) {
        case G_STDOUT: gqueue_put(&g_out1, p, n, "", 0); break;
        case G_STDERR: gqueue_put(g_tty ? &g_out1 : &g_out2, p, n, "", 0); break;
        case G_STARTED:
            if (g_ms_started < 0) { timings("started", &g_ms_started); write_timings(); }
            break;
        case G_EXIT: case G_ERROR:
            g_main_ended = 1;
            if (type == G_ERROR) {
                g_error_len = n < sizeof g_error ? n : sizeof g_error;
                memcpy(g_error, p, g_error_len);
            } else if (g_exit_code < 0) { /* else a stop during the boot already decided the status */
                g_exit_code = code;
                timings("exit", &g_ms_exit);
            }
            gframe(&g_ctl_out, G_BYE, 0, "", 0);
            break;
        default: break;
        }
        return 0;
    }
    struct gexec *x = exec_of(stream);
    if (x == NULL || x->done) return 0; /* an exec whose client is gone, or a stream that is not (or no longer) one */
    switch (type) {
    case G_STDOUT: gframe(&x->out, F_STDOUT, 0, p, n); break;
    case G_STDERR: gframe(&x->out, F_STDERR, 0, p, n); break;
    case G_EXIT: {
        char text[16];
        int k = snprintf(text, sizeof text, "%d %d", code, sig); /* the checked values, not the guest's bytes */
        gframe(&x->out, F_EXIT, 0, text, (size_t)k);
        x->done = 1;
        break;
    }
    case G_ERROR: return -1; /* ERROR is stream 0's */
    default: break; /* STARTED */
    }
    return 0;
}

static int g_next_stream = 1;

static int exec_frame(void *arg, int type, int stream, const unsigned char *p, size_t n) {
    struct gexec *x = arg;
    (void)stream;
    if (x->done) return 0;
    if (x->stream == 0) {
        if (type != F_EXEC) return 0; /* the first frame must be the request */
        do { g_next_stream = g_next_stream >= 65535 ? 1 : g_next_stream + 1; } while (exec_of(g_next_stream));
        x->stream = g_next_stream;
        gframe(&g_ctl_out, G_EXEC, x->stream, p, n);
        return 0;
    }
    switch (type) {
    case F_STDIN: gframe(&g_ctl_out, G_STDIN, x->stream, p, n); break;
    case F_CLOSE_STDIN: gframe(&g_ctl_out, G_STDIN_CLOSE, x->stream, p, n); break;
    case F_RESIZE: gframe(&g_ctl_out, G_RESIZE, x->stream, p, n); break;
    case F_SIGNAL: gframe(&g_ctl_out, G_SIGNAL, x->stream, p, n); break;
    default: break;
    }
    return 0;
}

static void exec_drop(int i) {
    struct gexec *x = g_execs[i];
    if (x->stream > 0 && !x->done && g_ctl >= 0) gframe_text(&g_ctl_out, G_SIGNAL, x->stream, "9");
    xclose(x->c.fd);
    free(x->out.p);
    free(x);
    g_execs[i] = NULL;
}

static void exec_accept(void) {
    int fd = accept4(g_exec_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    for (int i = 0; i < G_MAX_EXECS; i++) {
        if (g_execs[i]) continue;
        g_execs[i] = calloc(1, sizeof *g_execs[i]);
        if (g_execs[i] == NULL) break;
        g_execs[i]->c.fd = fd;
        return;
    }
    note("exec refused: %d execs at once", G_MAX_EXECS);
    xclose(fd);
}

static int g_connect_unix(const char *path) {
    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { int e = errno; xclose(fd); errno = e; return -1; }
    return fd;
}

static int g_listen_unix(const char *path) {
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

static void start_vmm(char **argv, const char *netns, int console_stdout) {
    char text[32];
    int log = open("vmm.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log < 0) { say_err("kiln: vmm.log: %s", strerror(errno)); return; }
    /* a VMM whose stdout is the guest's console (Firecracker): boot.log holds this boot only, as QEMU's -serial file: */
    int out = console_stdout ? open("boot.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : log;
    if (out < 0) { say_err("kiln: boot.log: %s", strerror(errno)); xclose(log); return; }
    pid_t parent = getpid();
    g_vmm = fork();
    if (g_vmm < 0) { say_err("kiln: fork: %s", strerror(errno)); return; }
    if (g_vmm == 0) {
        sigset_t none;
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(out, 1) < 0 || dup2(log, 2) < 0) _exit(125);
        /* the VMM dies with its relay, so a killed sandbox never leaves a VM behind */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(125);
        if (setpgid(0, 0) != 0) _exit(125); /* signals for the workload are not for the VMM */
        if (sigemptyset(&none) != 0 || sigprocmask(SIG_SETMASK, &none, NULL) != 0) _exit(125);
        if (netns != NULL) { /* setns, not `ip netns exec`: that remounts /sys; stderr is vmm.log, the relay quotes it */
            int ns = open(netns, O_RDONLY | O_CLOEXEC);
            if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
                fprintf(stderr, "kiln: cannot enter the sandbox's network namespace %s: %s\n", netns, strerror(errno));
                _exit(125);
            }
            if (close(ns) != 0) _exit(125);
        }
        execvp(argv[0], argv);
        child_fail(argv[0], errno == ENOENT ? 127 : 126);
    }
    if (out != log) xclose(out);
    xclose(log);
    snprintf(text, sizeof text, "%d\n", (int)g_vmm);
    if (write_atomic("vmm.pid", text) != 0) note("writing vmm.pid: %s", strerror(errno));
}

static void reap_vmm(int sig_fd) {
    struct signalfd_siginfo si;
    while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        int s = (int)si.ssi_signo;
        if (s == SIGCHLD || s == SIGPIPE || s == SIGURG) continue;
        if (s == SIGWINCH && g_tty) { send_winsize(&g_ctl_out, G_RESIZE, 0); continue; }
        if (g_exit_code >= 0) continue; /* the workload has ended: nothing to signal */
        if (!g_hello_seen || g_ctl < 0) { /* still booting: a stop request stops the boot */
            if (s == SIGTERM || s == SIGINT || s == SIGHUP || s == SIGQUIT) {
                say_err("kiln: the VM was stopped (signal %d) while it booted", s);
                g_exit_code = 128 + s;
                if (g_vmm > 0 && kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
            }
            continue;
        }
        char text[16];
        snprintf(text, sizeof text, "%d", s);
        gframe_text(&g_ctl_out, G_SIGNAL, 0, text);
    }
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p < 0 && errno == EINTR) continue;
        if (p <= 0) return;
        if (p == g_vmm) { g_vmm_status = st; g_vmm = -1; timings("stopped", &g_ms_stopped); }
    }
}

/* The VMM has exited (reaped here, so its status is kept for the end); for waits before the main loop. */
static int vmm_gone(void) {
    int st;
    if (g_vmm <= 0) return 1;
    pid_t p = waitpid(g_vmm, &st, WNOHANG);
    if (p != g_vmm) return 0;
    g_vmm_status = st;
    g_vmm = -1;
    timings("stopped", &g_ms_stopped);
    return 1;
}

/* The control channel is up: the host speaks first (docs/guest-protocol.md), whichever side connected. */
static void control_open(int fd) {
    if (set_nonblock(fd) != 0) note("O_NONBLOCK: %s", strerror(errno));
    g_ctl = fd;
    g_ctlc.fd = fd;
    timings("connected", &g_ms_connected);
    gframe(&g_ctl_out, G_HELLO, 0, "version=1", 10);
}

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
 * One API request on its own connection (Connection: close, as FirecrackerApi builds them), bounded by G_API_MS
 * for the write and for the answer. Returns the HTTP status, or -1 (errno set, or EPROTO for a garbled answer); a
 * status >= 300 leaves the fault message in fault.
 */
static int api_exchange(int fd, const char *req, size_t n, char *fault, size_t faultn) {
    char resp[8192];
    size_t len = 0;
    struct timeval tv = { G_API_MS / 1000, 0 };
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 || write_all(fd, req, n) != 0) return -1;
    long long deadline = now_ms() + G_API_MS;
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
 * sock, each to be answered 2xx. The socket may take up to G_CONNECT_MS to appear; a VMM that exits meanwhile, a
 * refusal or a timeout ends the sequence with one line. 0 when all were accepted.
 */
static int send_api(const char *sock, const struct gbuf *reqs) {
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
        int status = api_exchange(fd, req, n, fault, sizeof fault);
        int e = errno;
        xclose(fd);
        if (status < 0) { say_err("kiln: the VMM did not answer %s: %s", what, strerror(e)); return -1; }
        if (status >= 300) { say_err("kiln: the VMM refused %s (HTTP %d): %s", what, status, fault); return -1; }
    }
    return 0;
}

#define RELAY_VM_USAGE "--relay-vm --dir DIR --spec FILE [--hello-timeout SECS] [--netns PATH] [--listen SOCK] " \
                       "[--api-sock SOCK --api-requests FILE] [--console-stdout] [--cgroup DIR] -- VMM ARGS..."

/* Moves this process into the cgroup DIR (kilnd's per-sandbox one, with a memory limit) before the VMM is started,
 * so the relay and the VMM are both held by its limit. */
static int join_cgroup(const char *dir) {
    char path[4096], pid[24];
    if ((size_t)snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= sizeof path) { errno = ENAMETOOLONG; return -1; }
    int k = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (write_all(fd, pid, (size_t)k) != 0) {
        int e = errno;
        if (close(fd) != 0) { /* keep the first error */ }
        errno = e;
        return -1;
    }
    return close(fd);
}

static int relay_vm(int argc, char **argv) {
    const char *dir = NULL, *spec = NULL, *netns = NULL, *listen_path = NULL, *api_sock = NULL, *api_requests = NULL;
    const char *cgroup = NULL;
    long hello_timeout = 60;
    int i, console_stdout = 0;
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) { i++; break; }
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--spec") == 0 && i + 1 < argc) spec = argv[++i];
        else if (strcmp(argv[i], "--hello-timeout") == 0 && i + 1 < argc) hello_timeout = atol(argv[++i]);
        else if (strcmp(argv[i], "--netns") == 0 && i + 1 < argc) netns = argv[++i];
        else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) listen_path = argv[++i];
        else if (strcmp(argv[i], "--api-sock") == 0 && i + 1 < argc) api_sock = argv[++i];
        else if (strcmp(argv[i], "--api-requests") == 0 && i + 1 < argc) api_requests = argv[++i];
        else if (strcmp(argv[i], "--console-stdout") == 0) console_stdout = 1;
        else if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc) cgroup = argv[++i];
        else return usage(RELAY_VM_USAGE);
    }
    if (dir == NULL || spec == NULL || i >= argc || hello_timeout <= 0 || (api_sock == NULL) != (api_requests == NULL))
        return usage(RELAY_VM_USAGE);
    g_t0 = now_ms();
    if (cgroup != NULL && join_cgroup(cgroup) != 0) {
        fprintf(stderr, "kiln: cannot join the sandbox's cgroup %s: %s\n", cgroup, strerror(errno));
        return 125;
    }
    struct gbuf start = { 0 }, api = { 0 };
    if (read_file(spec, &start) != 0) { fprintf(stderr, "kiln: %s: %s\n", spec, strerror(errno)); return 125; }
    if (chdir(dir) != 0) { fprintf(stderr, "kiln: %s: %s\n", dir, strerror(errno)); return 125; }
    if (api_requests != NULL && read_file(api_requests, &api) != 0) {
        fprintf(stderr, "kiln: %s: %s\n", api_requests, strerror(errno));
        return 125;
    }
    /* listening before the VMM starts: the guest can never connect before someone is there (docs/vm.md) */
    if (listen_path != NULL && (g_ctl_listen = g_listen_unix(listen_path)) < 0) {
        fprintf(stderr, "kiln: cannot listen on %s/%s: %s\n", dir, listen_path, strerror(errno));
        return 125;
    }
    if (api_sock != NULL && unlink(api_sock) != 0 && errno != ENOENT) note("removing %s: %s", api_sock, strerror(errno));
    int sig_fd = all_signals_fd();
    if (sig_fd < 0) { fprintf(stderr, "kiln: signalfd: %s\n", strerror(errno)); return 125; }
    g_tty = isatty(0);
    if (g_tty) raw_mode(0);
    if (set_nonblock(0) != 0 || set_nonblock(1) != 0 || (!g_tty && set_nonblock(2) != 0)) note("O_NONBLOCK: %s", strerror(errno));
    if (unlink("ctl.sock") != 0 && errno != ENOENT) note("removing ctl.sock: %s", strerror(errno));
    if ((g_exec_listen = g_listen_unix("exec.sock")) < 0) say_err("kiln: exec.sock: %s", strerror(errno));
    start_vmm(argv + i, netns, console_stdout);
    if (api_sock != NULL && g_vmm > 0 && send_api(api_sock, &api) != 0) {
        g_exit_code = 125;
        if (g_vmm > 0 && kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
    }
    free(api.p);
    long long hello_deadline = now_ms() + hello_timeout * 1000, connect_deadline = now_ms() + G_CONNECT_MS;
    long long stop_deadline = -1, end_deadline = -1;
    int started = 0, ctl_eof = 0;
    for (;;) {
        long long now = now_ms();
        int timeout = 50;
        if (g_ctl < 0 && !ctl_eof && g_vmm > 0 && g_ctl_listen < 0) { /* the VMM creates its socket soon after start */
            int fd = g_connect_unix("ctl.sock");
            if (fd >= 0) {
                control_open(fd);
            } else if (now > connect_deadline) {
                say_err("kiln: the VMM did not open its control socket within %d s (see %s/vmm.log)",
                        G_CONNECT_MS / 1000, dir);
                ctl_eof = 1;
                if (kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
            } else timeout = 10;
        }
        if (g_hello_seen && !started && !g_main_ended) { /* (an ERROR before HELLO: no START for that guest) */
            started = 1;
            gframe(&g_ctl_out, G_START, 0, start.p, start.len);
            if (g_tty) send_winsize(&g_ctl_out, G_RESIZE, 0);
        }
        if (!g_hello_seen && g_exit_code < 0 && g_vmm > 0 && now > hello_deadline) {
            char line[300];
            last_line("boot.log", line, sizeof line);
            say_err("kiln: the VM did not answer within %ld s (kernel or kiln-init hung?)%s%s; see %s/boot.log",
                    hello_timeout, line[0] ? ": last console line: guest: " : "", line, dir);
            g_exit_code = 125;
            if (kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
        }
        if ((g_exit_code >= 0 || g_main_ended) && stop_deadline < 0) stop_deadline = now + G_POWEROFF_MS;
        if (stop_deadline >= 0 && g_vmm > 0 && now > stop_deadline) {
            note("the VMM did not stop within %d s after the workload: killed", G_POWEROFF_MS / 1000);
            if (kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
            stop_deadline = now + 60000;
        }
        if (g_vmm < 0 && end_deadline < 0) end_deadline = now + 2000; /* drain what is left, bounded */
        if (g_vmm < 0 && ((ctl_eof || g_ctl < 0) && g_out1.len == 0 && g_out2.len == 0)) break;
        if (end_deadline >= 0 && now > end_deadline) break;

        /* backpressure: while a queue the guest fills is full, the guest's channel is not read at all (not polled for
         * input: a hang-up is not taken as a reason to read either), so the queues stay bounded (G_QUEUE_MAX) */
        struct pollfd pfd[5 + G_MAX_EXECS];
        int full = g_out1.len > G_HIGH || g_out2.len > G_HIGH;
        for (int k = 0; k < G_MAX_EXECS; k++) full |= g_execs[k] && g_execs[k]->out.len > G_HIGH;
        int ctl_busy = g_ctl_out.len > G_HIGH;
        int ctl_in = g_ctl >= 0 && !ctl_eof && !full;
        short ctl_ev = (short)((ctl_in ? POLLIN : 0) | (g_ctl >= 0 && g_ctl_out.len ? POLLOUT : 0));
        pfd[0] = (struct pollfd){ sig_fd, POLLIN, 0 };
        pfd[1] = (struct pollfd){ ctl_ev ? g_ctl : -1, ctl_ev, 0 };
        pfd[2] = (struct pollfd){ started && g_stdin_open && !ctl_busy && g_exit_code < 0 ? 0 : -1, POLLIN, 0 };
        pfd[3] = (struct pollfd){ g_out1.len ? 1 : -1, POLLOUT, 0 };
        pfd[4] = (struct pollfd){ g_out2.len ? 2 : -1, POLLOUT, 0 };
        for (int k = 0; k < G_MAX_EXECS; k++) {
            struct gexec *x = g_execs[k];
            short ev = x == NULL ? 0 : (short)((started && !ctl_busy && !x->done ? POLLIN : 0) | (x->out.len ? POLLOUT : 0));
            pfd[5 + k] = (struct pollfd){ ev ? x->c.fd : -1, ev, 0 };
        }
        if (g_exec_listen >= 0) { /* accepted in the same pass as the listening socket is polled below */ }
        struct pollfd lp = { g_exec_listen, POLLIN, 0 };
        struct pollfd all[7 + G_MAX_EXECS];
        memcpy(all, pfd, sizeof pfd);
        all[5 + G_MAX_EXECS] = lp;
        all[6 + G_MAX_EXECS] = (struct pollfd){ g_ctl_listen, POLLIN, 0 }; /* --listen: until the guest connected */
        if (poll(all, 7 + G_MAX_EXECS, timeout) < 0 && errno != EINTR) { note("poll: %s", strerror(errno)); break; }
        if (all[6 + G_MAX_EXECS].revents) {
            /* one guest connection is the channel; the socket goes at once, so no second one can reach the relay */
            int fd = accept4(g_ctl_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd >= 0) {
                xclose(g_ctl_listen);
                g_ctl_listen = -1;
                if (unlink(listen_path) != 0 && errno != ENOENT) note("removing %s: %s", listen_path, strerror(errno));
                if (ctl_eof || g_ctl >= 0) xclose(fd); /* the VM was given up on meanwhile */
                else control_open(fd);
            } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                note("accept on %s: %s", listen_path, strerror(errno));
            }
        }
        if (all[0].revents) reap_vmm(sig_fd);
        if ((all[1].revents & (POLLOUT | POLLHUP | POLLERR)) && g_ctl_out.len) gbuf_flush(&g_ctl_out, g_ctl);
        if (ctl_in && (all[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            int r = gconn_read(&g_ctlc);
            if (gconn_frames(&g_ctlc, guest_frame, NULL) != 0) {
                say_err("kiln: the guest broke the protocol (a malformed frame); stopping the VM");
                if (g_exit_code < 0) g_exit_code = 125;
                if (g_vmm > 0 && kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
                r = 1;
            }
            if (r != 0) { ctl_eof = 1; xclose(g_ctl); g_ctl = -1; g_ctl_out.len = 0; }
        }
        if (all[2].revents) {
            char data[G_MAX_PAYLOAD];
            ssize_t r = read(0, data, sizeof data);
            if (r > 0) gframe(&g_ctl_out, G_STDIN, 0, data, (size_t)r);
            else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                g_stdin_open = 0;
                gframe(&g_ctl_out, G_STDIN_CLOSE, 0, "", 0);
            }
        }
        if (all[3].revents) gbuf_flush(&g_out1, 1);
        if (all[4].revents) gbuf_flush(&g_out2, 2);
        for (int k = 0; k < G_MAX_EXECS; k++) {
            struct gexec *x = g_execs[k];
            short ev = all[5 + k].revents;
            if (x == NULL || ev == 0) continue;
            if ((ev & POLLOUT) && gbuf_flush(&x->out, x->c.fd) != 0) { exec_drop(k); continue; }
            if (x->done && x->out.len == 0) { exec_drop(k); continue; }
            if (!(all[5 + k].events & POLLIN) || g_ctl_out.len > G_HIGH) { /* not reading it now (see above) */
                if ((ev & (POLLHUP | POLLERR)) && !(ev & POLLOUT)) exec_drop(k); /* its client is gone */
                continue;
            }
            if (ev & (POLLIN | POLLHUP | POLLERR)) {
                int r = gconn_read(&x->c);
                if (gconn_frames(&x->c, exec_frame, x) != 0 || r != 0) { exec_drop(k); continue; }
            }
        }
        for (int k = 0; k < G_MAX_EXECS; k++) /* finished execs whose last frames were taken */
            if (g_execs[k] && g_execs[k]->done && g_execs[k]->out.len == 0) exec_drop(k);
        if (all[5 + G_MAX_EXECS].revents) exec_accept();
    }
    if (g_vmm > 0) { /* bounded drain ended with the VMM still there: it goes with us */
        if (kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
    }
    if (unlink("exec.sock") != 0 && errno != ENOENT) note("removing exec.sock: %s", strerror(errno));
    if (g_ctl_listen >= 0) { /* the guest never connected */
        xclose(g_ctl_listen);
        if (unlink(listen_path) != 0 && errno != ENOENT) note("removing %s: %s", listen_path, strerror(errno));
    }
    for (int k = 0; k < G_MAX_EXECS; k++) {
        struct gexec *x = g_execs[k];
        if (x == NULL) continue;
        if (!x->done && x->stream > 0) gframe_text(&x->out, F_EXIT, 0, "137 9");
        if (gbuf_flush(&x->out, x->c.fd) != 0) { /* the exec client is gone */ }
    }
    write_timings();
    if (g_exit_code < 0) {
        char line[300], vmm[300];
        last_line("boot.log", line, sizeof line);
        last_line("vmm.log", vmm, sizeof vmm);
        if (g_main_ended) { /* the guest's ERROR: its words, escaped and marked as the guest's */
            char text[4 * G_ERROR_KEEP + 1];
            guest_text((const unsigned char *)g_error, g_error_len, text, sizeof text);
            say_err("kiln: the VM could not start the sandbox: guest: %s", text);
        } else if (line[0]) {
            say_err("kiln: the VM stopped before its workload exited; last console line: guest: %s (see %s/boot.log)",
                    line, dir);
        }
        else say_err("kiln: the VM stopped before its workload exited%s%s (see %s/vmm.log)",
                     vmm[0] ? ": " : "", vmm, dir);
        g_exit_code = 125;
    }
    long long flush_deadline = now_ms() + 2000;
    while ((g_out1.len || g_out2.len) && now_ms() < flush_deadline) {
        struct pollfd p[2] = { { g_out1.len ? 1 : -1, POLLOUT, 0 }, { g_out2.len ? 2 : -1, POLLOUT, 0 } };
        if (poll(p, 2, 100) < 0 && errno != EINTR) break;
        if (p[0].revents && gbuf_flush(&g_out1, 1) != 0) break;
        if (p[1].revents && gbuf_flush(&g_out2, 2) != 0) break;
    }
    /* The guest's process ended with this status: it is the relay's exit code (so the outer shim records it, 137 for
     * a SIGKILLed workload as Docker reports it), never a signal raised here. Already checked to be 0..255. */
    _exit(g_exit_code);
}

/* A frame from the VM relay for this exec: its output, or its exit as "CODE SIGNAL" (checked by the relay, and here
 * again: these bytes came from the guest; anything but a valid exit is 255, an unknown status). */
static int exec_client_frame(void *arg, int type, int stream, const unsigned char *p, size_t n) {
    int *exit_code = arg, sig;
    (void)stream;
    if (exit_code[0] >= 0) return 0; /* one exit, then nothing */
    if (type == F_STDOUT) gqueue_put(&g_out1, p, n, "", 0);
    else if (type == F_STDERR) gqueue_put(g_tty ? &g_out1 : &g_out2, p, n, "", 0);
    else if (type == F_EXIT && exit_parse(p, n, &exit_code[0], &sig) != 0) exit_code[0] = 255;
    return 0;
}

static int relay_exec(int argc, char **argv) {
    if (argc != 4) return usage("--relay-exec EXEC_SOCK SPEC_FILE");
    struct gbuf spec = { 0 }, out = { 0 };
    int exit_code[1] = { -1 };
    struct gconn *c = calloc(1, sizeof *c);
    if (c == NULL) return 125;
    if (read_file(argv[3], &spec) != 0) { fprintf(stderr, "kiln: %s: %s\n", argv[3], strerror(errno)); return 125; }
    char sock[4096];
    snprintf(sock, sizeof sock, "%s", argv[2]);
    char *slash = strrchr(sock, '/');
    if (slash != NULL) { /* connect relative to the socket's directory: no limit on the path's length */
        *slash = 0;
        if (chdir(sock[0] ? sock : "/") != 0) { fprintf(stderr, "kiln: %s: %s\n", sock, strerror(errno)); return 125; }
    }
    int sig_fd = all_signals_fd();
    if (sig_fd < 0) { fprintf(stderr, "kiln: signalfd: %s\n", strerror(errno)); return 125; }
    if ((c->fd = g_connect_unix(slash ? slash + 1 : sock)) < 0) {
        fprintf(stderr, "kiln: the VM is not running (%s: %s)\n", argv[2], strerror(errno));
        return 125;
    }
    g_tty = isatty(0);
    if (g_tty) raw_mode(0);
    if (set_nonblock(c->fd) != 0 || set_nonblock(0) != 0 || set_nonblock(1) != 0 || (!g_tty && set_nonblock(2) != 0))
        note("O_NONBLOCK: %s", strerror(errno));
    gframe(&out, F_EXEC, 0, spec.p, spec.len);
    if (g_tty) send_winsize(&out, F_RESIZE, 0);
    int in_open = 1, eof = 0;
    while (!eof || g_out1.len || g_out2.len) {
        /* as relay_vm: the relay's connection is not read at all while our output is full */
        int c_in = !eof && g_out1.len <= G_HIGH && g_out2.len <= G_HIGH;
        short c_ev = (short)((c_in ? POLLIN : 0) | (!eof && out.len ? POLLOUT : 0));
        struct pollfd p[5] = {
            { sig_fd, POLLIN, 0 },
            { c_ev ? c->fd : -1, c_ev, 0 },
            { in_open && !eof && out.len < G_HIGH ? 0 : -1, POLLIN, 0 },
            { g_out1.len ? 1 : -1, POLLOUT, 0 },
            { g_out2.len ? 2 : -1, POLLOUT, 0 } };
        if (poll(p, 5, eof ? 2000 : -1) <= 0) {
            if (errno == EINTR) continue;
            break; /* stdout taken by nobody for 2 s after the end */
        }
        if (p[0].revents) {
            struct signalfd_siginfo si;
            while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
                char text[16];
                int s = (int)si.ssi_signo;
                if (s == SIGCHLD || s == SIGPIPE || s == SIGURG) continue;
                if (s == SIGWINCH && g_tty) { send_winsize(&out, F_RESIZE, 0); continue; }
                snprintf(text, sizeof text, "%d", s);
                gframe_text(&out, F_SIGNAL, 0, text);
            }
        }
        if ((p[1].revents & (POLLOUT | POLLHUP | POLLERR)) && out.len && gbuf_flush(&out, c->fd) != 0) eof = 1;
        if (c_in && !eof && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            int r = gconn_read(c);
            if (gconn_frames(c, exec_client_frame, exit_code) != 0 || r != 0) eof = 1;
        }
        if (p[2].revents) {
            char data[G_MAX_PAYLOAD];
            ssize_t r = read(0, data, sizeof data);
            if (r > 0) gframe(&out, F_STDIN, 0, data, (size_t)r);
            else if (r == 0 || (errno != EAGAIN && errno != EINTR)) { in_open = 0; gframe(&out, F_CLOSE_STDIN, 0, "", 0); }
        }
        if (p[3].revents && gbuf_flush(&g_out1, 1) != 0) g_out1.len = 0;
        if (p[4].revents && gbuf_flush(&g_out2, 2) != 0) g_out2.len = 0;
    }
    if (exit_code[0] < 0) {
        fprintf(stderr, "kiln: the VM stopped before the exec'd process exited\n");
        return 255;
    }
    return exit_code[0]; /* an exit status only, 0..255: never a signal raised here (as relay_vm) */
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--relay-vm") == 0) return relay_vm(argc, argv);
    if (argc > 1 && strcmp(argv[1], "--relay-exec") == 0) return relay_exec(argc, argv);
    int i, rp[2];
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) { i++; break; }
        if (strcmp(a, "--tty") == 0) opt_tty = 1;
        else if (strcmp(a, "--stdin") == 0) opt_stdin = 1;
        else if (strcmp(a, "--dir") == 0 && i + 1 < argc) opt_dir = argv[++i];
        else if (strcmp(a, "--log") == 0 && i + 1 < argc) opt_log = argv[++i];
        else if (strcmp(a, "--wait-attach") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            opt_wait = strtol(argv[++i], &end, 10);
            if (errno != 0 || *end != 0 || end == argv[i] || opt_wait < 0 || opt_wait > 86400)
                return usage("--wait-attach needs a number of seconds (0..86400)");
        } else if (a[0] == '-') return usage("unknown or incomplete option");
        else break;
    }
    if (opt_dir == NULL) return usage("--dir is required");
    if (i >= argc) return usage("no command given");
    cmd_argv = argv + i;
    /* Start clean: descriptors leaked by the caller must reach neither the shim nor CMD. */
    if (syscall(SYS_close_range, 3, ~0U, 0) != 0)
        for (int fd = 3; fd < 1024; fd++)
            if (close(fd) != 0 && errno != EBADF) { perror("kiln-shim: close"); return 1; }
    if (pipe2(rp, O_CLOEXEC) != 0) { perror("kiln-shim: pipe"); return 1; }
    pid_t p = fork();
    if (p < 0) { perror("kiln-shim: fork"); return 1; }
    if (p > 0) { /* the launcher: report the shim's set-up result, then exit */
        char buf[600];
        size_t len = 0;
        int st;
        if (close(rp[1]) != 0) { perror("kiln-shim: close"); return 1; }
        for (;;) {
            ssize_t r = read(rp[0], buf + len, sizeof buf - 1 - len);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0 || (len += (size_t)r) == sizeof buf - 1) break;
        }
        buf[len] = 0;
        if (waitpid(p, &st, 0) < 0) perror("kiln-shim: waitpid");
        if (strcmp(buf, "ok\n") == 0) return 0;
        fprintf(stderr, "%s", len > 0 ? buf : "kiln-shim: the monitor exited during set-up\n");
        return 1;
    }
    if (close(rp[0]) != 0) _exit(1);
    if (setsid() < 0) report_failure(rp[1], fail("setsid"));
    p = fork();
    if (p < 0) report_failure(rp[1], fail("fork"));
    if (p > 0) _exit(0); /* the session leader leaves: the shim can never regain a controlling terminal */
    if (setup() != 0) {
        if (listen_fd >= 0 && unlink("attach.sock") != 0) { /* errmsg already says what went wrong */ }
        report_failure(rp[1], -1);
    }
    if (write_all(rp[1], "ok\n", 3) != 0 || close(rp[1]) != 0) note("signalling readiness: %s", strerror(errno));
    run();
    finish();
    return 0;
}
