/*
 * Saving a VM's state to a file over QMP (docs/vm.md, "Snapshot start"): the relay's --save-to mode, for the one
 * template boot per VM shape. QEMU 7.2 has no file: migration URI, and its fd: URI takes only a descriptor passed over
 * the monitor (getfd, SCM_RIGHTS), which Java's unix sockets cannot send; so the relay, which already holds the
 * VMM's sockets and descriptors, does it: qmp_capabilities, getfd, migrate fd:, query-migrate until completed.
 * The VM is not stopped first: a state saved from a paused VM restores paused (QEMU keeps the source's run state),
 * and the guest, idle in kiln-init's wait for START, dirties next to nothing while its memory is copied.
 * QEMU never opens a path or a socket of its own for it (its jail has neither), and writes the state into the
 * descriptor the relay opened.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"

struct qmp { int fd; char in[65536]; size_t len; long long deadline; };

/* One line from QEMU that is not an event (events are skipped); -1 on EOF, error or the deadline. */
static int qmp_line(struct qmp *q, char *line, size_t n) {
    for (;;) {
        char *nl = memchr(q->in, '\n', q->len);
        if (nl != NULL) {
            size_t k = (size_t)(nl - q->in) + 1;
            size_t copy = k < n ? k : n - 1;
            memcpy(line, q->in, copy);
            line[copy] = 0;
            memmove(q->in, q->in + k, q->len - k);
            q->len -= k;
            if (strstr(line, "\"event\"") != NULL && strstr(line, "\"return\"") == NULL) continue;
            return 0;
        }
        if (q->len == sizeof q->in) return -1; /* a line longer than QEMU writes */
        long long left = q->deadline - now_ms();
        struct pollfd p = { q->fd, POLLIN, 0 };
        int r = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { errno = ETIMEDOUT; return -1; }
        ssize_t k = read(q->fd, q->in + q->len, sizeof q->in - q->len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) { if (k == 0) errno = ECONNRESET; return -1; }
        q->len += (size_t)k;
    }
}

/* Sends one command (with `fd` as SCM_RIGHTS when >= 0) and reads its answer into `line`; -1 with the reason in err
 * when it failed or QEMU answered with an error. */
static int qmp_do(struct qmp *q, const char *cmd, int fd, char *line, size_t n, char *err, size_t errn) {
    struct iovec iov = { (void *)cmd, strlen(cmd) };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (fd >= 0) {
        memset(&u, 0, sizeof u);
        m.msg_control = u.buf;
        m.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    if (sendmsg(q->fd, &m, MSG_NOSIGNAL) != (ssize_t)iov.iov_len) {
        snprintf(err, errn, "QMP: sending %.40s: %s", cmd, strerror(errno));
        return -1;
    }
    if (qmp_line(q, line, n) != 0) {
        snprintf(err, errn, "QMP: no answer to %.40s: %s", cmd, strerror(errno));
        return -1;
    }
    if (strstr(line, "\"error\"") != NULL) {
        char *d = strstr(line, "\"desc\"");
        snprintf(err, errn, "QMP refused %.40s: %.200s", cmd, d ? d : line);
        return -1;
    }
    return 0;
}

/* Connects to QEMU's monitor and negotiates; -1 with the reason in err. A QEMU just started makes its socket as it
 * starts: a missing or not yet listening socket is tried again for as long as a VMM may take to make its sockets
 * (G_CONNECT_MS, within timeout_ms; a restore's first connect once failed on a loaded CI machine after 2 s). */
static int qmp_open(struct qmp *q, const char *qmp_sock, int timeout_ms, char *err, size_t errn) {
    char line[4096];
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(qmp_sock) >= sizeof a.sun_path) { snprintf(err, errn, "%s: path too long", qmp_sock); return -1; }
    strcpy(a.sun_path, qmp_sock);
    q->len = 0;
    q->deadline = now_ms() + timeout_ms;
    long long connect_deadline = now_ms() + (timeout_ms < G_CONNECT_MS ? timeout_ms : G_CONNECT_MS);
    int connected;
    for (;;) {
        if ((q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
            snprintf(err, errn, "socket: %s", strerror(errno));
            return -1;
        }
        connected = connect(q->fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (connected || (errno != ENOENT && errno != ECONNREFUSED) || now_ms() > connect_deadline) break;
        xclose(q->fd);
        struct timespec ts = { 0, 2000000 };
        nanosleep(&ts, NULL);
    }
    if (!connected) {
        snprintf(err, errn, "connecting to %s: %s", qmp_sock, strerror(errno));
    } else if (qmp_line(q, line, sizeof line) != 0) { /* the greeting */
        snprintf(err, errn, "QMP greeting: %s", strerror(errno));
    } else if (qmp_do(q, "{\"execute\":\"qmp_capabilities\"}\n", -1, line, sizeof line, err, errn) == 0) {
        return 0;
    }
    xclose(q->fd);
    return -1;
}

/* A checkpoint's restore (relay.c, --resume): the VM was saved stopped, so it restores stopped (QEMU takes the
 * source's run state over a cont given while it loads); once it has loaded, cont runs it. Without cont: returns once
 * it has loaded (QEMU drops a chardev client that connected while it loaded, so the relay connects after).
 * With cont, the relay has connected to the guest's channel at chardev_sock, and QEMU must have accepted it before the
 * guest runs: a guest that writes to its port while QEMU's end is still unconnected has the port throttled for good
 * (QEMU's write fails, and the watch that would unthrottle it needs a connection), and its output stops; QEMU's
 * query-chardev names the socket "disconnected:unix:PATH,..." until it has. */
int vm_cont(const char *qmp_sock, int timeout_ms, int cont, const char *chardev_sock, char *err, size_t errn) {
    static struct qmp q;
    char line[4096], unconnected[160];
    snprintf(unconnected, sizeof unconnected, "\"disconnected:unix:%s,", chardev_sock != NULL ? chardev_sock : "");
    if (qmp_open(&q, qmp_sock, timeout_ms, err, errn) != 0) return -1;
    int rc = -1;
    for (;;) {
        if (qmp_do(&q, "{\"execute\":\"query-status\"}\n", -1, line, sizeof line, err, errn) != 0) break;
        /* {"return": {"status": "paused", "singlestep": false, "running": false}}: the status, not the key */
        if (strstr(line, "\"status\": \"running\"") != NULL || strstr(line, "\"status\":\"running\"") != NULL) {
            rc = 0;
            break;
        }
        if (strstr(line, "\"inmigrate\"") == NULL && !cont) { rc = 0; break; }
        if (strstr(line, "\"inmigrate\"") == NULL) {
            if (chardev_sock != NULL &&
                qmp_do(&q, "{\"execute\":\"query-chardev\"}\n", -1, line, sizeof line, err, errn) != 0) break;
            if (chardev_sock == NULL || strstr(line, unconnected) == NULL) {
                rc = qmp_do(&q, "{\"execute\":\"cont\"}\n", -1, line, sizeof line, err, errn);
                break;
            }
        }
        if (now_ms() > q.deadline) {
            snprintf(err, errn, "the VM did not load%s within %d ms", cont ? " and take its channel" : "", timeout_ms);
            break;
        }
        struct timespec ts = { 0, 10000000 };
        nanosleep(&ts, NULL);
    }
    xclose(q.fd);
    return rc;
}

/* The VM's state into state_fd (migrate fd:); with quit, QEMU is told to quit once it is complete (a snapshot's
 * template), else the VM is left as the migration leaves it (a checkpoint: stopped, kilnd decides what follows). */
int snapshot_save(const char *qmp_sock, int state_fd, int timeout_ms, int quit, int ignore_shared, char *err,
                  size_t errn) {
    static struct qmp q;
    char line[4096];
    if (qmp_open(&q, qmp_sock, timeout_ms, err, errn) != 0) return -1;
    int rc = -1;
    /* a template with its memory in a file (share=on), which the relay writes to the snapshot's ram file: the state
     * holds only the devices' (x-ignore-shared: no page of a shared RAM block goes into the stream). A checkpoint
     * holds the memory, also of a VM restored from a snapshot, whose QEMU still has the capability on from its
     * restore (and a shared memory block): said explicitly either way. */
    char caps[200];
    snprintf(caps, sizeof caps, "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":"
             "[{\"capability\":\"x-ignore-shared\",\"state\":%s}]}}\n", ignore_shared ? "true" : "false");
    if (qmp_do(&q, caps, -1, line, sizeof line, err, errn) == 0 &&
        qmp_do(&q, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"kiln-state\"}}\n", state_fd, line,
               sizeof line, err, errn) == 0 &&
        /* the default is 32 MiB/s, meant for a network; a file takes what the disk gives */
        qmp_do(&q, "{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"max-bandwidth\":"
                   "107374182400}}\n", -1, line, sizeof line, err, errn) == 0 &&
        qmp_do(&q, "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:kiln-state\"}}\n", -1, line,
               sizeof line, err, errn) == 0) {
        for (;;) {
            if (qmp_do(&q, "{\"execute\":\"query-migrate\"}\n", -1, line, sizeof line, err, errn) != 0) break;
            if (strstr(line, "\"completed\"") != NULL) { rc = 0; break; }
            if (strstr(line, "\"failed\"") != NULL || strstr(line, "\"cancelled\"") != NULL) {
                char *d = strstr(line, "\"error-desc\"");
                snprintf(err, errn, "QEMU could not save the VM: %.200s", d ? d : line);
                break;
            }
            if (now_ms() > q.deadline) { snprintf(err, errn, "saving the VM took more than %d ms", timeout_ms); break; }
            struct timespec ts = { 0, 10000000 };
            nanosleep(&ts, NULL);
        }
        if (rc == 0 && quit && qmp_do(&q, "{\"execute\":\"quit\"}\n", -1, line, sizeof line, err, errn) != 0) {
            rc = 0; /* QEMU may close the monitor before it answers quit: the state is complete either way */
        }
    }
    xclose(q.fd);
    return rc;
}

/*
 * kiln-shim --vm-save --qmp-sock SOCK --to FILE [--timeout SECS]: a checkpoint of a running QEMU VM (docs/checkpoint.md).
 * kilnd has stopped the VM (QMP stop); this writes its state to FILE, opened here as root (0600) and handed to the
 * jailed QEMU over its monitor, as the template's save does. Exit 0 once the state is complete and on disk; else
 * one line on stderr and 125.
 */
int vm_save(int argc, char **argv) {
    const char *qmp_sock = NULL, *to = NULL;
    long timeout = 120;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--qmp-sock") == 0 && i + 1 < argc) qmp_sock = argv[++i];
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) to = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) timeout = atol(argv[++i]);
        else return usage("--vm-save --qmp-sock SOCK --to FILE [--timeout SECS]");
    }
    if (qmp_sock == NULL || to == NULL || timeout <= 0) return usage("--vm-save --qmp-sock SOCK --to FILE [--timeout SECS]");
    int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) { fprintf(stderr, "kiln: %s: %s\n", to, strerror(errno)); return 125; }
    char why[400];
    if (snapshot_save(qmp_sock, fd, (int)(timeout * 1000), 0, 0, why, sizeof why) != 0) {
        fprintf(stderr, "kiln: cannot save the VM: %s\n", why);
        xclose(fd);
        return 125;
    }
    if (fsync(fd) != 0) { fprintf(stderr, "kiln: fsync %s: %s\n", to, strerror(errno)); xclose(fd); return 125; }
    if (close(fd) != 0) { fprintf(stderr, "kiln: close %s: %s\n", to, strerror(errno)); return 125; }
    return 0;
}

/*
 * A snapshot's restore with its memory mapped (docs/vm.md, "Snapshot start"): QEMU was started with -incoming defer
 * and its memory as the relay's memfd (the snapshot's ram file copied in); x-ignore-shared as the template had it
 * (QEMU checks that the two sides agree), then the state from descriptor `fd` (only the devices': a few tens of KB).
 * Returns once the VM runs (QEMU drops a chardev client that connected while it loaded, so the relay connects after).
 */
int vm_incoming(const char *qmp_sock, int fd, int timeout_ms, char *err, size_t errn) {
    static struct qmp q;
    char line[4096], cmd[160];
    long long deadline = now_ms() + timeout_ms;
    if (qmp_open(&q, qmp_sock, timeout_ms, err, errn) != 0) return -1;
    snprintf(cmd, sizeof cmd, "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"fd:%d\"}}\n", fd);
    int rc = -1;
    if (qmp_do(&q, "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":"
                   "[{\"capability\":\"x-ignore-shared\",\"state\":true}]}}\n", -1, line, sizeof line, err, errn) == 0 &&
        qmp_do(&q, cmd, -1, line, sizeof line, err, errn) == 0) {
        for (;;) {
            if (qmp_do(&q, "{\"execute\":\"query-status\"}\n", -1, line, sizeof line, err, errn) != 0) break;
            if (strstr(line, "\"running\": true") != NULL || strstr(line, "\"running\":true") != NULL) { rc = 0; break; }
            if (strstr(line, "\"inmigrate\"") == NULL) {
                snprintf(err, errn, "the VM did not load its snapshot (QEMU: %.200s; see vmm.log)", line);
                break;
            }
            if (now_ms() > deadline) { snprintf(err, errn, "the VM did not load within %d ms", timeout_ms); break; }
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    xclose(q.fd);
    return rc;
}

static int zero_page(const char *p) {
    static const char zero[4096];
    return memcmp(p, zero, sizeof zero) == 0;
}

/* Copies the pages of `from` that are not zero to the same offsets of `to` (zero pages stay holes: they read as zero
 * and take no memory or disk). 0, or -1 with errno. */
static int copy_pages(int from, int to, off_t size) {
    static char buf[1 << 20];
    off_t at = 0;
    for (;;) {
        off_t data = lseek(from, at, SEEK_DATA);
        if (data < 0) return errno == ENXIO ? 0 : -1; /* no data past `at` */
        off_t hole = lseek(from, data, SEEK_HOLE);
        if (hole < 0) return -1;
        if (hole > size) hole = size;
        for (off_t o = data & ~(off_t)4095; o < hole; ) {
            size_t want = (size_t)(hole - o < (off_t)sizeof buf ? hole - o : (off_t)sizeof buf);
            ssize_t n = pread(from, buf, want, o);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) { if (n == 0) errno = EIO; return -1; }
            for (ssize_t p = 0; p < n; p += 4096) {
                size_t len = (size_t)(n - p < 4096 ? n - p : 4096);
                if (len == 4096 && zero_page(buf + p)) continue;
                if (pwrite(to, buf + p, len, o + p) != (ssize_t)len) return -1;
            }
            o += n;
        }
        if (hole >= size) return 0;
        at = hole;
    }
}

/* The extents of `from` (a snapshot's ram file: its zero pages are holes already) to the same offsets of `to`, in
 * the kernel (sendfile: one copy, from the page cache into the tmpfs, where pread + pwrite made two). 0, or -1. */
static int copy_extents(int from, int to, off_t size) {
    off_t at = 0;
    for (;;) {
        off_t data = lseek(from, at, SEEK_DATA);
        if (data < 0) return errno == ENXIO ? 0 : -1;
        off_t hole = lseek(from, data, SEEK_HOLE);
        if (hole < 0) return -1;
        if (hole > size) hole = size;
        if (lseek(to, data, SEEK_SET) != data) return -1;
        for (off_t o = data; o < hole; ) {
            ssize_t n = sendfile(to, from, &o, (size_t)(hole - o));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) { if (n == 0) errno = EIO; return -1; }
        }
        if (hole >= size) return 0;
        at = hole;
    }
}

/* The guest's memory file `fd` (fresh, on the VMM's tmpfs): sized. Empty for a template; a restore's pages are copied
 * in by the relay while QEMU starts (ram_copy). -1 with the reason in err. */
int ram_fill(int fd, long long bytes, char *err, size_t errn) {
    if (ftruncate(fd, (off_t)bytes) != 0) { snprintf(err, errn, "sizing the guest's memory: %s", strerror(errno)); return -1; }
    return 0;
}

/* A snapshot's ram file, opened (as root, before anything starts) into *out. That file must be exactly the VM's memory
 * size: one of another VM is refused (kilnd checked its shape; this is the relay's own check of what it maps). -1
 * with the reason in err. */
int ram_open(const char *from, long long bytes, int *out, char *err, size_t errn) {
    int f = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (f < 0 || fstat(f, &st) != 0) {
        snprintf(err, errn, "the snapshot's memory %s: %s", from, strerror(errno));
    } else if (!S_ISREG(st.st_mode) || st.st_size != (off_t)bytes) {
        snprintf(err, errn, "the snapshot's memory %s is %lld bytes, not the VM's %lld (remove the snapshot's "
                 "directory and kiln makes a new one)", from, (long long)st.st_size, bytes);
    } else {
        *out = f;
        return 0;
    }
    if (f >= 0) xclose(f);
    return -1;
}

/*
 * The snapshot's pages (`from`, ram_open's) into the restored VM's memory file `to_path` (its tmpfs, reached through
 * /proc/VMM/root: made and sized by the VMM's child, jail.c), only those that are not zero. Done by the relay after
 * QEMU's exec, so it runs while QEMU starts: QEMU only maps the file then, and touches no page of guest memory before
 * migrate-incoming (it skips its ROM copies while it waits for a migration), which the relay sends after this. The
 * relay is in the sandbox's memory cgroup: the pages are the sandbox's. -1 with the reason in err.
 */
int ram_copy(int from, const char *to_path, long long bytes, char *err, size_t errn) {
    int to = open(to_path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    struct stat st;
    int rc = -1;
    if (to < 0 || fstat(to, &st) != 0) {
        snprintf(err, errn, "the guest's memory %.300s: %s", to_path, strerror(errno));
    } else if (!S_ISREG(st.st_mode) || st.st_size != (off_t)bytes) {
        snprintf(err, errn, "the guest's memory %.300s is not a file of %lld bytes", to_path, bytes);
    } else if (copy_extents(from, to, (off_t)bytes) != 0) {
        snprintf(err, errn, "copying the snapshot's memory: %s", strerror(errno));
    } else {
        rc = 0;
    }
    if (to >= 0 && close(to) != 0 && rc == 0) { snprintf(err, errn, "close %.300s: %s", to_path, strerror(errno)); rc = -1; }
    return rc;
}

/* A template's memory (`m`: its file on the VMM's tmpfs, read through /proc/VMM/root) into the snapshot's ram file
 * `to`, sparse, on disk (fsync). -1 with err. */
int ram_save(int m, const char *to, char *err, size_t errn) {
    struct stat st;
    int f = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (f < 0 || fstat(m, &st) != 0 || ftruncate(f, st.st_size) != 0 || copy_pages(m, f, st.st_size) != 0 ||
        fsync(f) != 0) {
        snprintf(err, errn, "writing the VM's memory to %s: %s", to, strerror(errno));
        if (f >= 0) xclose(f);
        return -1;
    }
    if (close(f) != 0) { snprintf(err, errn, "closing %s: %s", to, strerror(errno)); return -1; }
    return 0;
}
