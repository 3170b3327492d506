/*
 * kiln-shim: a tiny per-sandbox monitor (like podman's conmon or containerd-shim), and kiln's host end of a VM.
 *
 *   kiln-shim --dir DIR [--tty] [--stdin] [--wait-attach|--hold-output SECS] [--log FILE] -- CMD ARGS...  (monitor.c)
 *   kiln-shim --relay-vm --dir VMDIR --spec FILE [...] -- VMM ARGS...                           (relay.c)
 *   kiln-shim --relay-exec EXEC_SOCK FILE                                                       (relay_exec.c)
 *   kiln-shim --vm-save --qmp-sock SOCK --to FILE                                               (snapshot.c)
 *
 * One static binary, four modes (main.c picks one): the monitor (docs/shim.md) runs any command, the VM relay is such a
 * command for a VM (docs/vm.md), the exec relay one for a process exec'd in it, and the VM save. This file holds what
 * all of them share: the problem log, atomic files, time stamps, the exit of a failed child. Static, no dependencies
 * beyond libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

/* RFC 3339 UTC time with nanoseconds, e.g. 2026-11-27T10:00:00.123456789Z */
void rfc3339(char *out, size_t n) {
    struct timespec ts;
    struct tm tm;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL) {
        snprintf(out, n, "1970-01-01T00:00:00.000000000Z");
        return;
    }
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%09ldZ", (long)ts.tv_nsec);
}

/* After readiness our stderr is /dev/null: problems are appended to DIR/shim.log (the cwd is DIR by then). */
void note(const char *fmt, ...) {
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

void xclose(int fd) {
    if (fd >= 0 && close(fd) != 0) note("close(%d): %s", fd, strerror(errno));
}

/* Writes NAME via NAME.tmp + rename, so readers see the whole file or none. */
int write_atomic(const char *name, const char *text) {
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

/* In a forked child that failed to become its command: one line on its stderr, then the exit code. */
void child_fail(const char *what, int code) {
    char msg[512];
    int e = errno;
    int n = snprintf(msg, sizeof msg, "kiln-shim: %s: %s\n", what, strerror(e));
    if (write_all(2, msg, (size_t)n) != 0) { /* stderr is gone: only the exit code tells */ }
    _exit(code);
}

int usage(const char *why) {
    fprintf(stderr, "kiln-shim: %s\nusage: kiln-shim --dir DIR [--tty] [--stdin] [--wait-attach SECS | --hold-output SECS]"
                    " [--log FILE]"
                    " -- CMD ARGS...\n", why);
    return 2;
}
