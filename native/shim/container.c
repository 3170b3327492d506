/*
 * The monitor's container mode (docs/shim.md, "Container mode"), as podman's conmon drives runc:
 *
 *   kiln-shim --dir DIR [...] --container ID --bundle BUNDLE -- RUNTIME GLOBAL-FLAGS...
 *
 * The monitor (monitor.c) runs `RUNTIME ... create --bundle BUNDLE --pid-file container.pid [--console-socket S] ID`
 * with the container's stdio, then `RUNTIME ... start ID`; both exit, and the container's init, orphaned, is
 * reparented to the shim (a child subreaper), which reaps it. At the end `RUNTIME ... delete --force ID`. No runtime
 * process stays beside an idle container. This file holds the runtime's invocations and the console socket through
 * which runc hands over the master of the container's terminal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"

#define MAX_ARGS 64 /* the runtime's global flags plus a verb's own: kiln passes about ten */

/* Forks RUNTIME... ARGS... with stdin/stdout/stderr IN/OUT/ERR, in the shim's working directory (DIR), in its own
 * process group, every signal at its default. Returns the child's pid, or -1 (errno). A runtime that cannot be
 * executed exits 127 (not found) or 126, with the reason on ERR. */
pid_t runtime_spawn(char *const *runtime, const char *const *args, int in, int out, int err) {
    char *argv[MAX_ARGS + 1];
    size_t n = 0;
    for (; runtime[n] != NULL; n++) {
        if (n == MAX_ARGS) { errno = E2BIG; return -1; }
        argv[n] = runtime[n];
    }
    for (size_t i = 0; args[i] != NULL; i++, n++) {
        if (n == MAX_ARGS) { errno = E2BIG; return -1; }
        argv[n] = (char *)args[i];
    }
    argv[n] = NULL;
    pid_t p = fork();
    if (p != 0) return p;
    sigset_t none;
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(125);
    for (int sig = 1; sig < 65; sig++) /* ignored signals survive exec: the runtime starts with every default */
        if (sig != SIGKILL && sig != SIGSTOP && signal(sig, SIG_DFL) == SIG_ERR && errno != EINVAL)
            child_fail("signal", 125);
    if (sigemptyset(&none) != 0 || sigprocmask(SIG_SETMASK, &none, NULL) != 0) child_fail("sigprocmask", 125);
    if (setpgid(0, 0) != 0) child_fail("setpgid", 125);
    execvp(argv[0], argv);
    child_fail(argv[0], errno == ENOENT ? 127 : 126);
}

/* Runs RUNTIME... ARGS... to its end (stdin and stdout /dev/null, stderr appended to shim.log), killing it after
 * TIMEOUT_MS. Returns its wait status, or -1. Other children the shim reaps meanwhile are handed to ORPHAN. */
int runtime_run(char *const *runtime, const char *const *args, long long timeout_ms, void (*orphan)(pid_t, int)) {
    int log = open("shim.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (log < 0) { note("opening shim.log: %s", strerror(errno)); return -1; }
    pid_t p = runtime_spawn(runtime, args, 0, 0, log);
    int e = errno;
    xclose(log);
    if (p < 0) { note("running %s %s: %s", runtime[0], args[0], strerror(e)); return -1; }
    long long deadline = now_ms() + timeout_ms;
    int killed = 0;
    for (;;) {
        int st;
        pid_t w = waitpid(-1, &st, WNOHANG);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) { note("waitpid: %s", strerror(errno)); return -1; }
        if (w == p) return st;
        if (w > 0) { orphan(w, st); continue; }
        if (!killed && now_ms() >= deadline) {
            note("%s %s: no exit after %lld ms, killed", runtime[0], args[0], timeout_ms);
            if (kill(p, SIGKILL) != 0) note("kill(%d): %s", (int)p, strerror(errno));
            killed = 1;
        }
        if (poll(NULL, 0, 5) < 0 && errno != EINTR) note("poll: %s", strerror(errno));
    }
}

/* Listens on DIR/console.sock (the working directory; mode 0600) for the runtime's terminal. Returns the socket. */
int console_listen(void) {
    struct sockaddr_un addr;
    if (unlink("console.sock") != 0 && errno != ENOENT) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, "console.sock");
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || chmod("console.sock", 0600) != 0
        || listen(fd, 1) != 0) {
        int e = errno;
        xclose(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The path the runtime dials: DIR through /proc/SHIMPID/cwd, so DIR's length never meets the 107 bytes of a socket
 * address (runc makes the path absolute before it connects). */
void console_path(char *out, size_t n) {
    snprintf(out, n, "/proc/%d/cwd/console.sock", (int)getpid());
}

/* Accepts the runtime's connection on LISTEN_FD and returns the terminal master it passes (SCM_RIGHTS), or -1:
 * errno EAGAIN when no connection is waiting yet. The runtime sends the descriptor as soon as it connects. */
int console_receive(int listen_fd) {
    int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) return -1;
    struct timeval tv = { 5, 0 }; /* runc writes right after connecting: a silent peer is not runc */
    char name[256];
    union { struct cmsghdr h; char space[CMSG_SPACE(sizeof(int))]; } ctl;
    struct iovec iov = { name, sizeof name };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.space;
    msg.msg_controllen = sizeof ctl.space;
    ssize_t r;
    if (setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) r = -1;
    else while ((r = recvmsg(c, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) { /* again */ }
    int e = errno;
    xclose(c);
    if (r < 0) { errno = e; return -1; }
    struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
    if (h == NULL || h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS
        || h->cmsg_len != CMSG_LEN(sizeof(int))) {
        errno = EPROTO;
        return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(h), sizeof fd);
    return fd;
}

/* The pid the runtime wrote to NAME (its --pid-file), or -1. */
pid_t read_pid_file(const char *name) {
    char text[32];
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t r = read(fd, text, sizeof text - 1);
    int e = errno;
    xclose(fd);
    if (r <= 0) { errno = r < 0 ? e : EINVAL; return -1; }
    text[r] = 0;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || (*end != 0 && *end != '\n') || v <= 1 || v > 0x3fffffff) {
        errno = EINVAL;
        return -1;
    }
    return (pid_t)v;
}
