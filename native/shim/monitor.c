/*
 * The per-process monitor (docs/shim.md):
 *
 *   kiln-shim --dir DIR [--tty] [--stdin] [--wait-attach SECS | --hold-output SECS] [--log FILE] -- CMD ARGS...
 *   kiln-shim --dir DIR [...] --container ID --bundle BUNDLE -- RUNTIME GLOBAL-FLAGS...
 *
 * Detaches from its caller (fork, setsid, fork), becomes a child subreaper, listens on DIR/attach.sock, runs CMD,
 * writes CMD's output to a Docker json-file log and to attach clients, and records CMD's exit in DIR/exit.json.
 * In container mode "CMD" is the container's init: the runtime creates and starts it and exits, and the shim reaps
 * the orphaned init itself (container.c), as conmon does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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
#include <unistd.h>

#include "shim.h"

#define LINE_MAX_LEN   16384     /* a partial line is logged as its own record when it reaches this size */
#define CLIENT_OUT_MAX (1 << 20) /* output queued for one attach client; when full, CMD's output waits (backpressure) */
#define STALL_MS       5000      /* ... but a client that stays full this long without taking anything is dropped */
#define FRAME_IN_MAX   MAX_PAYLOAD /* largest frame payload a client may send */
#define STDIN_MAX      (1 << 20) /* stdin queued for CMD; clients are not read while it has no room for a frame */
#define MAX_CLIENTS    32
#define EXIT_SLACK     32        /* room kept beyond CLIENT_OUT_MAX for the exit frame */
#define DRAIN_MS       2000      /* after CMD exits, output is read until EOF or until it has been quiet this long */
#define FLUSH_MS       2000      /* at the end, clients that take nothing of their last frames this long are dropped */
#define EXIT_ROOM      160       /* exit.json's room, written at set-up: the record must fit a full disk (finish) */


struct stream { int fd; int type; const char *name; size_t len; char buf[LINE_MAX_LEN]; };
struct client {
    int fd, rd_closed;
    long long full_since; /* when its output queue last became full; 0 when it has room */
    size_t inlen, outlen;
    unsigned char in[FRAME_HEADER + FRAME_IN_MAX];
    char *out;
};

static const char *opt_dir, *opt_log;
static const char *opt_container, *opt_bundle; /* container mode: cmd_argv is the runtime and its global flags */
static int opt_tty, opt_stdin;
static long opt_wait = -1;
static int opt_hold; /* --hold-output: CMD starts at once; its output and exit wait (opt_wait) for the first client */
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
static int launched; /* start_cmd ran: CMD forked, or in container mode the runtime's create */
static int may_start; /* no --wait-attach, or a client came, or its time ran out (latched) */
static int start_due; /* container mode: created, the runtime's start is to run once may_start */
/* Container mode's steps: the runtime's create, then its start (-1 when not running); the console socket while
 * create runs with --tty; whether the runtime holds the container (delete it at the end) */
static pid_t create_pid = -1, start_pid = -1;
static int console_fd = -1, created;
static struct winsize pending_ws; /* a resize asked for before the runtime handed over the terminal */
/* children reaped before their pid was known (the container's init, should it die before create reports it) */
static struct { pid_t pid; int status; } orphans[8];
static unsigned norphans;
static long long output_ms; /* when output was last read (or could not be, for backpressure) */
static int cmd_exited, exit_code, exit_signal;
static char finished_at[64];
static char errmsg[512];

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

/* Container mode with --tty before the runtime handed over the terminal's master (console.sock). */
static int awaiting_terminal(void) {
    return opt_container && opt_tty && pty_master < 0 && !cmd_exited;
}

static void put_frame(char *dst, int type, const void *p, size_t n) {
    frame_header((unsigned char *)dst, type, 0, n);
    memcpy(dst + FRAME_HEADER, p, n);
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
    if (opt_container) { /* the container's init alone, as `runc kill` and Docker's signal proxy do */
        if (kill(cmd_pid, sig) != 0) note("kill(%d, %d): %s", (int)cmd_pid, sig, strerror(errno));
        return;
    }
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
    case F_STDIN: /* with a container's --tty, queued until the runtime hands over the terminal */
        if (opt_stdin && !stdin_closed && (stdin_fd >= 0 || awaiting_terminal())) {
            if (stdin_len + n > STDIN_MAX) { note("stdin overflow: %zu bytes dropped", n); break; } /* unreachable */
            memcpy(stdin_q + stdin_len, p, n);
            stdin_len += n;
        }
        break;
    case F_CLOSE_STDIN:
        if (opt_stdin && !stdin_closed && (stdin_fd >= 0 || awaiting_terminal())) stdin_close();
        break;
    case F_RESIZE: {
        unsigned rows, cols;
        struct winsize ws;
        if (!opt_tty || sscanf(text, "%u %u", &rows, &cols) != 2 || rows > 65535 || cols > 65535) break;
        memset(&ws, 0, sizeof ws);
        ws.ws_row = (unsigned short)rows;
        ws.ws_col = (unsigned short)cols;
        if (awaiting_terminal()) pending_ws = ws; /* applied when the runtime hands the terminal over */
        else if (ioctl(pty_master, TIOCSWINSZ, &ws) != 0) note("TIOCSWINSZ: %s", strerror(errno));
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
    struct frame f;
    int r2;
    while ((r2 = frame_next(c->in + off, c->inlen - off, &f)) != 0) {
        if (r2 < 0) { client_drop(c, "frame too large"); return; }
        client_frame(f.type, f.payload, f.len);
        off += FRAME_HEADER + f.len;
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

static void write_started(pid_t p) {
    char text[128], ts[64];
    rfc3339(ts, sizeof ts);
    snprintf(text, sizeof text, "{\"pid\":%d,\"startedAt\":\"%s\"}\n", (int)p, ts);
    if (write_atomic("started.json", text) != 0) note("writing started.json: %s", strerror(errno));
}

static void close_child_ends(void) {
    if (child_err != child_out) xclose(child_err);
    if (child_in != child_out) xclose(child_in);
    xclose(child_out);
    child_in = child_out = child_err = -1;
}

static void cmd_ended(int st) {
    cmd_exited = 1;
    exit_signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    exit_code = WIFSIGNALED(st) ? 128 + exit_signal : WEXITSTATUS(st);
    rfc3339(finished_at, sizeof finished_at);
}

/* Container mode: `RUNTIME ... create` with the container's stdio (with --tty its terminal comes from the runtime
 * through console.sock, and the runtime's own messages go to the stderr pipe). */
static int start_create(void) {
    char console[64];
    const char *args[] = { "create", "--bundle", opt_bundle, "--pid-file", "container.pid", NULL, NULL, NULL, NULL };
    size_t n = 5;
    if (opt_tty) {
        console_path(console, sizeof console);
        args[n++] = "--console-socket";
        args[n++] = console;
    }
    args[n] = opt_container;
    create_pid = runtime_spawn(cmd_argv, args, child_in, child_out, child_err);
    if (create_pid < 0) { note("fork: %s", strerror(errno)); return -1; }
    close_child_ends();
    return 0;
}

static int start_cmd(void) {
    launched = 1;
    if (opt_container) return start_create();
    /* The child starts with every signal blocked: it inherits the shim's ignored SIGTERM/SIGINT/SIGHUP until
     * exec_cmd resets them, and a signal to an ignoring process is dropped, but a blocked one stays pending (Linux
     * never drops a blocked signal) and is delivered once exec_cmd unblocks it. A `kill` just after started.json
     * (which comes before the child ran) was lost so, and `sleep 100` ran on (AttachTest, under load). */
    sigset_t all, old;
    if (sigfillset(&all) != 0 || sigprocmask(SIG_BLOCK, &all, &old) != 0) { note("sigprocmask: %s", strerror(errno)); return -1; }
    pid_t p = fork();
    if (p == 0) exec_cmd();
    int fork_errno = errno;
    if (sigprocmask(SIG_SETMASK, &old, NULL) != 0) note("sigprocmask: %s", strerror(errno));
    if (p < 0) { note("fork: %s", strerror(fork_errno)); return -1; }
    cmd_pid = p;
    if (!opt_tty && setpgid(p, p) != 0 && errno != EACCES && errno != ESRCH) note("setpgid: %s", strerror(errno));
    close_child_ends();
    write_started(p);
    return 0;
}

/* The terminal's master from the runtime, once it connected to console.sock. */
static void take_terminal(void) {
    int m = console_receive(console_fd);
    if (m < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) note("receiving the terminal on console.sock: %s", strerror(errno));
        return;
    }
    xclose(console_fd);
    console_fd = -1;
    if (unlink("console.sock") != 0) note("removing console.sock: %s", strerror(errno));
    if (set_nonblock(m) != 0) note("O_NONBLOCK on the terminal: %s", strerror(errno));
    pty_master = out_s.fd = stdin_fd = m; /* as the shim's own terminal: stdin queued meanwhile is written now */
    if (pending_ws.ws_row || pending_ws.ws_col)
        if (ioctl(m, TIOCSWINSZ, &pending_ws) != 0) note("TIOCSWINSZ: %s", strerror(errno));
}

static void remember_orphan(pid_t p, int st) {
    orphans[norphans % 8].pid = p;
    orphans[norphans % 8].status = st;
    norphans++;
}

/* The runtime's create ended: on success the container's init waits for its start (start_container). */
static void create_ended(int st) {
    create_pid = -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { /* its reason is in the log, on stderr, as `runc run` left it */
        note("%s create: %s %d", cmd_argv[0], WIFSIGNALED(st) ? "killed by signal" : "exit",
             WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        cmd_ended(st);
        return;
    }
    created = 1;
    if (opt_tty && pty_master < 0 && console_fd >= 0) take_terminal(); /* sent before create exited */
    pid_t p = read_pid_file("container.pid");
    if (p < 0 || (opt_tty && pty_master < 0)) {
        note(p < 0 ? "reading container.pid: %s" : "the runtime handed over no terminal%s", p < 0 ? strerror(errno) : "");
        cmd_ended(125 << 8); /* the end deletes what the runtime made */
        return;
    }
    cmd_pid = p;
    for (unsigned i = 0; i < norphans && i < 8; i++)
        if (orphans[i].pid == p) { cmd_ended(orphans[i].status); return; } /* died before we knew its pid */
    start_due = 1;
}

/* Container mode: `RUNTIME ... start`, once created and may_start. */
static void start_container(void) {
    const char *args[] = { "start", opt_container, NULL };
    start_due = 0;
    int log = open("shim.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (log < 0) note("opening shim.log: %s", strerror(errno));
    start_pid = runtime_spawn(cmd_argv, args, 0, 0, log < 0 ? 2 : log);
    if (start_pid < 0) {
        note("fork: %s", strerror(errno));
        if (kill(cmd_pid, SIGKILL) != 0) note("kill(%d): %s", (int)cmd_pid, strerror(errno));
    }
    xclose(log);
}

/* The runtime's start ended: the container's init runs the user's process now, or start failed and it must go. */
static void start_ended(int st) {
    start_pid = -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) { write_started(cmd_pid); return; }
    note("%s start: exit %d (its messages are above); the container is killed", cmd_argv[0],
         WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    if (!cmd_exited && kill(cmd_pid, SIGKILL) != 0) note("kill(%d): %s", (int)cmd_pid, strerror(errno));
}

static void reaped(pid_t p, int st) {
    if (p == create_pid) create_ended(st);
    else if (p == start_pid) start_ended(st);
    else if (p == cmd_pid && !cmd_exited) cmd_ended(st);
    else if (opt_container && cmd_pid < 0) remember_orphan(p, st); /* perhaps the container's init */
    /* else an orphan we adopted as subreaper */
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
        reaped(p, st);
    }
}

static void orphan_reaped(pid_t p, int st) {
    (void)p;
    (void)st; /* the container's init is reaped already when the end comes: anything else is an adopted orphan */
}

/* Container mode's end, before exit.json: the start's status, then `RUNTIME ... delete --force`, so the runtime holds
 * no state when kilnd reads the exit (a restart creates the container again under the same id at once). */
static void container_end(void) {
    for (long long end = now_ms() + 10000; start_pid > 0;) { /* start returns at once; bounded all the same */
        int st;
        pid_t w = waitpid(start_pid, &st, WNOHANG);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) { note("waitpid(start): %s", strerror(errno)); break; }
        if (w > 0) break;
        if (now_ms() >= end) {
            note("%s start: no exit after 10 s, killed", cmd_argv[0]);
            if (kill(start_pid, SIGKILL) != 0) note("kill(%d): %s", (int)start_pid, strerror(errno));
            end = now_ms() + 10000;
        }
        if (poll(NULL, 0, 5) < 0 && errno != EINTR) note("poll: %s", strerror(errno));
    }
    start_pid = -1;
    if (!created) return;
    const char *args[] = { "delete", "--force", opt_container, NULL };
    int st = runtime_run(cmd_argv, args, 10000, orphan_reaped);
    if (st != 0 && st != -1) note("%s delete --force %s: exit status %d", cmd_argv[0], opt_container, st);
}

static void finish(void) {
    char text[EXIT_ROOM], code[16];
    if (opt_container) container_end();
    if (out_s.len > 0) log_record(&out_s, out_s.buf, out_s.len);
    if (err_s.len > 0) log_record(&err_s, err_s.buf, err_s.len);
    /* no new client once the exit is recorded: the socket's name goes first (connected clients keep their frames) */
    if (unlink("attach.sock") != 0) note("removing attach.sock: %s", strerror(errno));
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
    if (console_fd >= 0) { /* the runtime never connected */
        xclose(console_fd);
        if (unlink("console.sock") != 0) note("removing console.sock: %s", strerror(errno));
    }
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
    if (opt_container && opt_tty) { /* the runtime makes the terminal; until then its messages go to stderr */
        int e[2];
        if (pipe2(e, O_CLOEXEC) != 0) return fail("pipe");
        err_s.fd = e[0]; child_out = child_err = e[1];
        if (set_nonblock(e[0]) != 0) return fail("O_NONBLOCK");
        if ((child_in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) return fail("/dev/null");
        if ((console_fd = console_listen()) < 0) return fail("console.sock");
    } else if (opt_tty) {
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
        if (!may_start) {
            if (opt_wait < 0 || nclients > 0 || now >= start_at) { may_start = 1; output_ms = now; }
            else deadline = start_at;
        }
        /* container mode creates at once, while kilnd's client is still on its way to attach: only the start
         * waits for it (the process does not run before start, so no output can be missed); with --hold-output CMD
         * itself starts at once and only the reading of its output waits (below) */
        if (!launched && !cmd_exited && (may_start || opt_container || opt_hold)) {
            if (start_cmd() != 0) { cmd_exited = 1; exit_code = 125; rfc3339(finished_at, sizeof finished_at); }
            output_ms = now;
        }
        if (start_due && may_start && !cmd_exited) start_container();
        /* before the start, output stays in its pipes (a create's error reaches the client that attaches), and an
         * exit that left nothing to delete (the create failed) is only told then; a created container that was
         * killed meanwhile ends at once */
        int reading = may_start || (cmd_exited && created);
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
        if (paused || !reading) output_ms = now; /* time spent paused does not count as quiet */
        if (cmd_exited && reading) {
            if ((out_s.fd < 0 && err_s.fd < 0) || now - output_ms >= DRAIN_MS) return;
            deadline = earliest(deadline, output_ms + DRAIN_MS);
        }

        struct pollfd pfd[6 + MAX_CLIENTS];
        int room = stdin_len + sizeof clients[0].in <= STDIN_MAX, n = nclients;
        pfd[0] = (struct pollfd){ listen_fd, POLLIN, 0 };
        pfd[1] = (struct pollfd){ sig_fd, POLLIN, 0 };
        pfd[2] = (struct pollfd){ paused || !reading ? -1 : out_s.fd, POLLIN, 0 };
        pfd[3] = (struct pollfd){ paused || !reading ? -1 : err_s.fd, POLLIN, 0 };
        pfd[4] = (struct pollfd){ stdin_len > 0 ? stdin_fd : -1, POLLOUT, 0 };
        pfd[5] = (struct pollfd){ console_fd, POLLIN, 0 };
        for (int i = 0; i < n; i++) {
            struct client *c = &clients[i];
            short ev = (short)((c->rd_closed || !room ? 0 : POLLIN) | (c->outlen ? POLLOUT : 0));
            pfd[6 + i] = (struct pollfd){ c->fd, ev, 0 };
        }
        int timeout = deadline < 0 ? -1 : deadline <= now ? 0 : (int)(deadline - now);
        if (poll(pfd, (nfds_t)(6 + n), timeout) < 0) {
            if (errno != EINTR) { note("poll: %s", strerror(errno)); return; }
            continue;
        }
        if (pfd[5].revents && console_fd >= 0) take_terminal(); /* before the reap of the create that sent it */
        if (pfd[1].revents) reap();
        if (pfd[2].revents && out_s.fd >= 0) stream_read(&out_s);
        if (pfd[3].revents && err_s.fd >= 0) stream_read(&err_s);
        if (pfd[4].revents && stdin_fd >= 0 && stdin_len > 0) stdin_flush();
        for (int i = 0; i < n; i++) {
            struct client *c = &clients[i];
            short ev = pfd[6 + i].revents;
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

int monitor_main(int argc, char **argv) {
    int i, rp[2];
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) { i++; break; }
        if (strcmp(a, "--tty") == 0) opt_tty = 1;
        else if (strcmp(a, "--stdin") == 0) opt_stdin = 1;
        else if (strcmp(a, "--dir") == 0 && i + 1 < argc) opt_dir = argv[++i];
        else if (strcmp(a, "--log") == 0 && i + 1 < argc) opt_log = argv[++i];
        else if (strcmp(a, "--container") == 0 && i + 1 < argc) opt_container = argv[++i];
        else if (strcmp(a, "--bundle") == 0 && i + 1 < argc) opt_bundle = argv[++i];
        else if ((strcmp(a, "--wait-attach") == 0 || strcmp(a, "--hold-output") == 0) && i + 1 < argc) {
            char *end;
            if (opt_wait >= 0) return usage("--wait-attach and --hold-output are given once, one of them");
            opt_hold = a[2] == 'h';
            errno = 0;
            opt_wait = strtol(argv[++i], &end, 10);
            if (errno != 0 || *end != 0 || end == argv[i] || opt_wait < 0 || opt_wait > 86400)
                return usage("--wait-attach and --hold-output need a number of seconds (0..86400)");
        } else if (a[0] == '-') return usage("unknown or incomplete option");
        else break;
    }
    if (opt_dir == NULL) return usage("--dir is required");
    if (i >= argc) return usage("no command given");
    if ((opt_container == NULL) != (opt_bundle == NULL)) return usage("--container and --bundle go together");
    if (opt_hold && opt_container) return usage("--hold-output is for a command run as it is, not container mode");
    if (opt_container && (opt_container[0] == 0 || opt_container[0] == '-'))
        return usage("--container needs a container id");
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
