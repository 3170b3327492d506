/*
 * A stand-in VMM for VmmJailTest: kiln-shim's relay starts it exactly as it starts QEMU (same jail, same filter). It
 * says it started, then makes the one system call named by argv[1]; under the VMM's filter the kernel kills it there
 * for every call outside the allowlist, so "returned" is only ever printed for an allowed one. "wait" sleeps instead
 * (with ppoll, which the filter allows), so the test can look at the process from outside.
 * Static (musl): nothing to load in the jail. Uses only calls the filter allows before the one it tests.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void say(const char *text) {
    size_t n = strlen(text);
    if (write(1, text, n) != (ssize_t)n) _exit(3);
}

int main(int argc, char **argv) {
    char line[200];
    long r = -1;
    if (argc != 2) return 2;
    say("probe: started\n");
    if (strcmp(argv[1], "wait") == 0) {
        struct timespec ts = { 30, 0 };
        r = ppoll(NULL, 0, &ts, NULL);
    } else if (strcmp(argv[1], "mount") == 0) {
        r = syscall(SYS_mount, "none", "/", "tmpfs", 0L, 0L);
    } else if (strcmp(argv[1], "ptrace") == 0) {
        r = syscall(SYS_ptrace, 0L /* PTRACE_TRACEME */, 0L, 0L, 0L);
    } else if (strcmp(argv[1], "netlink") == 0) {
        r = syscall(SYS_socket, 16L /* AF_NETLINK */, 3L /* SOCK_RAW */, 0L);
    } else if (strcmp(argv[1], "unix") == 0) {
        r = syscall(SYS_socket, 1L /* AF_UNIX */, 1L /* SOCK_STREAM */, 0L);
    } else {
        return 2;
    }
    snprintf(line, sizeof line, "probe: %s returned %ld (%s)\n", argv[1], r, r < 0 ? strerror(errno) : "ok");
    say(line);
    return 0;
}
