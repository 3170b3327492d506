/*
 * kiln-init: PID 1 inside every kiln microVM.
 *
 * Loads the kernel modules listed in /modules.order, opens the control channel (the virtio-serial port "kiln.0"
 * on QEMU; with kiln.channel=vsock:PORT on the kernel command line, a vsock connection to the host, Firecracker's
 * hybrid vsock), greets the host, receives the sandbox (START), mounts the image disk (erofs, read-only) under overlayfs with the sandbox's
 * writable disk (ext4), moves into it, runs the main process and any EXEC'd processes with their stdio multiplexed
 * over the port, reports every exit, and powers the VM off when the main process is gone.
 *
 * The wire protocol is specified in docs/guest-protocol.md (its frame header and types: native/common/protocol.h); the
 * boot sequence in docs/vm.md. Static (musl), no
 * dependencies beyond libc, every return value checked.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../common/io.h"
#include "../common/protocol.h"

#define MAX_STREAMS   64
#define OUT_HIGH      (1 << 20) /* port output queued beyond this: stop reading process output (backpressure) */
#define STDIN_HIGH    (1 << 20) /* stdin queued for one process beyond this: stop reading the port */
#define DRAIN_MS      2000      /* after a process exits, its output is read until EOF or this long */
#define SHUTDOWN_MS   3000      /* after the main process: time for the others to be reported and for the host's BYE */
#define DEVICE_WAIT_MS 10000    /* how long devices (port, disks) may take to appear, and the host's vsock to answer */
#define VMADDR_CID_HOST 2       /* linux/vm_sockets.h, which musl's headers lack */
#define CMDLINE_MAX   4096      /* x86's COMMAND_LINE_SIZE is 2048 */

struct stream {
    int used, id, tty, stdin_closing;
    pid_t pid;
    int in_fd, out_fd, err_fd; /* with a tty all three are the pty master */
    int exited, code, sig;
    long long exited_ms;
    struct buf in;
};

struct spec {
    char *copy;                 /* the records, NUL-separated; every pointer below points into it */
    char **argv, **envp;
    const char *cwd, *hostname, *hosts, *resolv;
    const char *mac, *net, *gateway, *mtu; /* the guest NIC (docs/guest-protocol.md); mac NULL: loopback only */
    const char *seed, *time;               /* the relay's, new at every start: RNG seed (hex), host clock */
    const char *root;                      /* a virtio-fs tag: the root is that share (containerd's rootfs), no disks */
    const char *chroot;                    /* EXEC: a pod's container, its own root under the pod share (docs/containerd.md) */
    const char *image_bytes, *rw_bytes;    /* START: the sizes of the sandbox's image and writable disks (early_blk) */
    uid_t uid;
    gid_t gid, groups[64];
    int ngroups, tty, with_stdin, readonly, volatile_disk;
    const char *mounts[32];     /* "TYPE\tSOURCE\tTARGET\tFLAGS\tDATA": virtio-fs shares and tmpfs, parents first */
    int nmounts;
};

/* struct sockaddr_vm of linux/vm_sockets.h (the kernel's ABI; musl's headers do not carry it) */
struct vsock_addr {
    sa_family_t family;
    unsigned short reserved1;
    unsigned int port, cid;
    unsigned char flags, zero[3];
};

static int port = -1, sig_fd = -1, bye, main_done, rest_killed;
/* START's volatile=1 (a --rm sandbox): its writable disk is dropped with it, so the power-off does not sync it */
static int volatile_disk;
static int port_is_socket; /* the channel is a vsock stream: EOF means the host is gone, not "not connected yet" */
static char cmdline[CMDLINE_MAX];
static long long main_done_ms;
static struct buf outq;
static unsigned char inbuf[2 * (FRAME_HEADER + MAX_PAYLOAD)];
static size_t inlen, consumed; /* consumed: the bytes of inbuf's first frame, handled (next_frame) */
static struct stream streams[MAX_STREAMS];

/* One line on the console (the VM's boot log). */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
    char line[600];
    va_list ap;
    int k = snprintf(line, sizeof line, "kiln-init: ");
    va_start(ap, fmt);
    vsnprintf(line + k, sizeof line - (size_t)k - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    line[len++] = '\n';
    if (write_all(2, line, len) != 0) { /* no console: nothing else to tell */ }
}

static void send_frame(int type, int stream, const void *p, size_t n);
static void port_flush(void);

static void power_off(void) {
    /* the console's last line (kiln logs --boot): the relay may end the VMM before the kernel prints its own
     * "reboot: Power down" (below), so kiln-init says it and waits until the serial port has sent it */
    say("powering off");
    if (tcdrain(2) != 0 && errno != ENOTTY && errno != EBADF) { /* no console: nothing to wait for */ }
    if (!volatile_disk) sync();
    /* everything written is on the host's disk file now: a BYE back (only once the host said BYE, so it has the
     * exit) lets the relay end the VMM at once instead of waiting for the kernel's power-off and QEMU's own exit */
    if (bye && port >= 0) {
        send_frame(T_BYE, 0, "", 0);
        port_flush();
    }
    /* Firecracker (the vsock transport) has no power-off device: a reboot (reboot=k) is how its guest ends it */
    if (port_is_socket && reboot(RB_AUTOBOOT) != 0) say("reboot: %s", strerror(errno));
    if (reboot(RB_POWER_OFF) != 0) say("power off: %s", strerror(errno));
    if (reboot(RB_AUTOBOOT) != 0) say("reboot: %s", strerror(errno)); /* QEMU runs with -no-reboot: it exits */
    for (;;) pause();
}

static void send_frame(int type, int stream, const void *p, size_t n) {
    if (port < 0) return;
    if (buf_frame(&outq, type, stream, p, n) != 0) {
        say("out of memory queueing a frame for the host");
        power_off();
    }
}

static void send_text(int type, int stream, const char *fmt, ...) {
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof text) n = sizeof text - 1;
    send_frame(type, stream, text, (size_t)n);
}

/*
 * Firecracker resets every vsock connection when it snapshots the VM (a checkpoint, docs/checkpoint.md): the guest's
 * end then fails with ECONNRESET or ENOTCONN, not EOF (a host that closed). kiln-init connects again and goes on at a
 * frame boundary: outq drops a frame only once it is written whole (outq_sent counts the bytes written of what it
 * holds), so the frame the reset cut is sent again whole; what the old host had half-sent is dropped, the new host
 * speaks first (HELLO, which a started guest ignores). Output in flight at the reset is lost, as Firecracker says.
 */
static size_t outq_sent;
static int port_reset;
static unsigned channel_port;
static void vsock_connect(unsigned p);

static int port_lost(int e) {
    return port_is_socket && (e == ECONNRESET || e == ENOTCONN);
}

static void port_reconnect(void) {
    say("the host's connection was reset (a snapshot of the VM): connecting again");
    if (close(port) != 0) say("close: %s", strerror(errno));
    port = -1;
    port_reset = 0;
    outq_sent = 0;
    inlen = consumed = 0;
    vsock_connect(channel_port);
}

static void port_flush(void) {
    while (outq.len > outq_sent && !port_reset) {
        ssize_t w = write(port, outq.p + outq_sent, outq.len - outq_sent);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            if (port_lost(errno)) port_reset = 1;
            else if (errno != EAGAIN) { say("writing to the host: %s", strerror(errno)); outq.len = outq_sent = 0; }
            return;
        }
        outq_sent += (size_t)w;
        struct frame f;
        while (outq_sent > 0 && frame_next((const unsigned char *)outq.p, outq.len, &f) == 1 && FRAME_HEADER + f.len <= outq_sent) {
            buf_drop(&outq, FRAME_HEADER + f.len);
            outq_sent -= FRAME_HEADER + f.len;
        }
    }
}

/* Waits (bounded) until the host has the queued frames and, if asked, until it said BYE. */
static int next_frame(int *type, int *stream, unsigned char **payload, size_t *len);

static void settle(int want_bye, long long deadline) {
    while ((outq.len > 0 || (want_bye && !bye)) && !port_reset && now_ms() < deadline) {
        struct pollfd p = { port, (short)(POLLIN | (outq.len ? POLLOUT : 0)), 0 };
        if (poll(&p, 1, (int)(deadline - now_ms())) < 0 && errno != EINTR) return;
        if (p.revents & POLLOUT) port_flush();
        if (p.revents & POLLIN) {
            ssize_t r = read(port, inbuf + inlen, sizeof inbuf - inlen);
            if (r > 0) inlen += (size_t)r;
            else if (r == 0 || (errno != EAGAIN && errno != EINTR)) return;
            int t, s;
            unsigned char *pl;
            size_t n;
            while (next_frame(&t, &s, &pl, &n) == 1) if (t == T_BYE) bye = 1;
        }
    }
}

/* A set-up failure: tell the host (ERROR on stream 0) and the console, then power off. */
__attribute__((format(printf, 1, 2), noreturn)) static void fatal(const char *fmt, ...) {
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    say("%s", text);
    if (port >= 0) {
        send_frame(T_ERROR, 0, text, strlen(text));
        settle(1, now_ms() + 2000);
    }
    power_off();
    for (;;) pause();
}

/* Consumes one complete frame from inbuf; 1 if one was there, 0 if more bytes are needed. */

static int next_frame(int *type, int *stream, unsigned char **payload, size_t *len) {
    if (consumed > 0) { /* the previous frame has been handled: drop it */
        memmove(inbuf, inbuf + consumed, inlen - consumed);
        inlen -= consumed;
        consumed = 0;
    }
    struct frame f;
    int r = frame_next(inbuf, inlen, &f);
    if (r < 0) fatal("the host sent a frame of %zu bytes (at most %d)", f.len, MAX_PAYLOAD);
    if (r == 0) return 0;
    *type = f.type;
    *stream = f.stream;
    *payload = inbuf + FRAME_HEADER;
    *len = f.len;
    consumed = FRAME_HEADER + f.len;
    return 1;
}

/* Blocks (the set-up phase) until a frame arrives; the host is expected, so no timeout: it enforces one. */
static void read_frame(int *type, int *stream, unsigned char **payload, size_t *len) {
    while (next_frame(type, stream, payload, len) == 0) {
        if (port_reset) port_reconnect();
        struct pollfd p = { port, (short)(POLLIN | (outq.len ? POLLOUT : 0)), 0 };
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR) continue;
            fatal("poll on the control port: %s", strerror(errno));
        }
        if (p.revents & POLLOUT) port_flush();
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(port, inbuf + inlen, sizeof inbuf - inlen);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r < 0 && port_lost(errno)) { port_reset = 1; continue; }
            if (r < 0) fatal("reading the control port: %s", strerror(errno));
            if (r == 0 && port_is_socket) { /* nobody left to send an ERROR to: only the console hears of it */
                if (close(port) != 0) say("close: %s", strerror(errno));
                port = -1;
                fatal("the host closed the control connection");
            }
            if (r == 0) { struct timespec ts = { 0, 20000000 }; nanosleep(&ts, NULL); continue; } /* host not yet there */
            inlen += (size_t)r;
        }
    }
}

/* ---- set-up ---- */

static void xmkdir(const char *path, mode_t mode) {
    if (mkdir(path, mode) != 0 && errno != EEXIST) fatal("mkdir %s: %s", path, strerror(errno));
}

static void xmount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
    if (mount(src, dst, type, flags, data) != 0)
        fatal("mounting %s (%s) on %s: %s", src ? src : "-", type ? type : "move", dst, strerror(errno));
}

/* mkdir -p, for a working directory that the image does not have (Docker creates it too). */
static int mkdir_p(const char *path) {
    char tmp[4096];
    if (strlen(path) >= sizeof tmp) { errno = ENAMETOOLONG; return -1; }
    strcpy(tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/*
 * The kernel command line's parameters for module `name` ("virtio_mmio.device=4K@0xd0000000:5" → "device=..."),
 * space-separated, as modprobe passes them: the kernel applies such parameters itself only to built-in code, so a
 * module loaded by finit_module gets them here (e.g. Firecracker's virtio_mmio.device= for a kernel with
 * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES). '-' and '_' are the same in module names; quoted values are not supported.
 */
static void module_params(const char *name, char *out, size_t n) {
    size_t k = 0, nl = strlen(name);
    out[0] = 0;
    for (const char *t = cmdline; *t; ) {
        while (*t == ' ') t++;
        size_t tl = strcspn(t, " ");
        int match = tl > nl + 1 && t[nl] == '.';
        for (size_t i = 0; match && i < nl; i++)
            match = t[i] == name[i] || ((t[i] == '-' || t[i] == '_') && (name[i] == '-' || name[i] == '_'));
        if (match) {
            if (k + (tl - nl - 1) + 2 > n) fatal("the kernel command line's parameters for %s are too long", name);
            if (k > 0) out[k++] = ' ';
            memcpy(out + k, t + nl + 1, tl - nl - 1);
            k += tl - nl - 1;
            out[k] = 0;
        }
        t += tl;
    }
}

/*
 * kiln.snapshot on the command line: this boot is the template of a snapshot (docs/vm.md, "Snapshot start"), and every
 * VM restored from it continues here. The disks and the network card are the sandbox's, not the template's: their
 * drivers (virtio_blk, virtio_net) are loaded in the template with the virtio bus's drivers_autoprobe off, so they
 * are registered but bound to no device, and only after START are the devices probed (bind_late_devices): the
 * kernel then reads the restored VM's devices (their size, no cached block of a placeholder) instead of remembering
 * the template's, and the restored VM pays only the probes, not the module loads (relocations, symbols, init).
 */
static int snapshot_boot;
/*
 * kiln.early-blk (QEMU's templates): virtio_blk is not late. The template binds it to its two placeholder disks, which
 * have the sizes a sandbox's disks have (the image disk padded to its span, the default writable disk), so a restored
 * VM whose disks have those sizes pays no probe after START: under TCG the first probe of a virtio-blk device after a
 * restore (driver, block layer, gendisk, sysfs, partition scan, all translated anew) was most of START → workload.
 * What the template's kernel cached of the placeholders (the partition scan's blocks) is dropped before the
 * snapshot (early_disk_template), and a disk of another size is unbound after START and probed again (early_disk).
 */
static int early_blk;
static char early_image[64], early_rw[64]; /* the disks' nodes the template found, "" once unbound (early_disk) */
static unsigned long long early_image_sectors, early_rw_sectors; /* their capacity, as the template's kernel has it */

static int late_module(const char *name) {
    return (strcmp(name, "virtio_blk") == 0 && !early_blk) || strcmp(name, "virtio_net") == 0;
}

/* Loads /modules.order in order; with kiln.snapshot, pass 0 skips the late ones (above) and pass 1 loads only them. */
static void load_modules(int pass) {
    char list[8192], name[128], params[CMDLINE_MAX];
    int fd = open("/modules.order", O_RDONLY | O_CLOEXEC);
    if (fd < 0) { if (errno != ENOENT) fatal("/modules.order: %s", strerror(errno)); return; }
    ssize_t n = read(fd, list, sizeof list - 1);
    if (n < 0) fatal("reading /modules.order: %s", strerror(errno));
    if (close(fd) != 0) fatal("close: %s", strerror(errno));
    list[n] = 0;
    for (char *line = strtok(list, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        const char *base = strrchr(line, '/') ? strrchr(line, '/') + 1 : line;
        snprintf(name, sizeof name, "%.*s", (int)strcspn(base, "."), base);
        if (snapshot_boot ? late_module(name) != pass : pass != 0) continue;
        module_params(name, params, sizeof params);
        int m = open(line, O_RDONLY | O_CLOEXEC);
        if (m < 0) fatal("module %s: %s", line, strerror(errno));
        if (syscall(SYS_finit_module, m, params, 0) != 0 && errno != EEXIST)
            fatal("loading module %s: %s", line, strerror(errno));
        if (close(m) != 0) fatal("close: %s", strerror(errno));
    }
}

/* The control channel the kernel command line asks for: the vsock port of kiln.channel=vsock:PORT, 0 for QEMU's
 * virtio-serial port (no kiln.channel). Anything else is a host/guest mismatch worth stopping for. */
static unsigned vsock_port(void) {
    const char *key = "kiln.channel=";
    for (const char *t = cmdline; (t = strstr(t, key)) != NULL; t += strlen(key)) {
        if (t != cmdline && t[-1] != ' ') continue;
        char *end;
        const char *v = t + strlen(key);
        if (strncmp(v, "vsock:", 6) != 0) fatal("unknown kiln.channel \"%.*s\"", (int)strcspn(v, " "), v);
        errno = 0;
        unsigned long p = strtoul(v + 6, &end, 10);
        if (errno != 0 || end == v + 6 || (*end != ' ' && *end != 0) || p == 0 || p > 0xffffffffUL)
            fatal("bad vsock port in kiln.channel=%.*s", (int)strcspn(v, " "), v);
        return (unsigned)p;
    }
    return 0;
}

/*
 * Connects to the host (CID 2) on vsock port `p`: Firecracker forwards it to the relay's unix socket. Retried until
 * DEVICE_WAIT_MS, since the virtio-vsock device may still be probing (ENODEV) and a connection is reset while
 * nobody listens on the host; the host speaks first once connected, as over the virtio-serial port.
 */
static void vsock_connect(unsigned p) {
    long long deadline = now_ms() + DEVICE_WAIT_MS;
    struct vsock_addr a;
    memset(&a, 0, sizeof a);
    a.family = AF_VSOCK;
    a.cid = VMADDR_CID_HOST;
    a.port = p;
    for (;;) {
        int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) fatal("socket(AF_VSOCK): %s (are vsock and vmw_vsock_virtio_transport in the initramfs?)",
                          strerror(errno));
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            if (set_nonblock(fd) != 0) fatal("O_NONBLOCK on the vsock connection: %s", strerror(errno));
            port = fd;
            port_is_socket = 1;
            return;
        }
        int e = errno;
        if (close(fd) != 0) fatal("close: %s", strerror(errno));
        if (e == EINTR) continue;
        if (now_ms() > deadline) fatal("connecting to the host on vsock port %u: %s after %d ms", p, strerror(e),
                                       DEVICE_WAIT_MS);
        struct timespec ts = { 0, 20000000 };
        nanosleep(&ts, NULL);
    }
}

static int read_small(const char *path, char *out, size_t n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t r = read(fd, out, n - 1);
    int e = errno;
    if (close(fd) != 0 && r >= 0) return -1;
    if (r < 0) { errno = e; return -1; }
    out[r] = 0;
    if (r > 0 && out[r - 1] == '\n') out[r - 1] = 0;
    return 0;
}

/*
 * The entry under sysdir whose attribute file `attr` reads `want` (polls until it appears): with `devdir` its device
 * node (devdir/NAME, which must exist too), else its bare name (a network interface has no node).
 */
static void find_entry(const char *sysdir, const char *attr, const char *want, const char *devdir, char *out, size_t n) {
    long long deadline = now_ms() + DEVICE_WAIT_MS;
    for (;;) {
        DIR *d = opendir(sysdir);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            char path[600], value[128];
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s/%s", sysdir, e->d_name, attr);
            if (read_small(path, value, sizeof value) == 0 && strcasecmp(value, want) == 0) {
                if (devdir == NULL) snprintf(out, n, "%s", e->d_name);
                else snprintf(out, n, "%s/%s", devdir, e->d_name);
                if (closedir(d) != 0) fatal("closedir: %s", strerror(errno));
                if (devdir == NULL || access(out, F_OK) == 0) return;
                d = NULL;
                break;
            }
        }
        if (d != NULL && closedir(d) != 0) fatal("closedir: %s", strerror(errno));
        if (now_ms() > deadline) fatal("no device with %s \"%s\" under %s after %d ms", attr, want, sysdir, DEVICE_WAIT_MS);
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
    }
}

static void find_device(const char *sysdir, const char *attr, const char *want, char *dev, size_t n) {
    find_entry(sysdir, attr, want, "/dev", dev, n);
}

/* Parses NUL-separated key=value records (docs/guest-protocol.md) into a spec; -1 with a message on error. */
static int parse_spec(const unsigned char *p, size_t n, struct spec *s, char *err, size_t errn) {
    memset(s, 0, sizeof *s);
    s->cwd = "/";
    if (n == 0 || p[n - 1] != 0) { snprintf(err, errn, "process spec not NUL-terminated"); return -1; }
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += p[i] == 0;
    s->copy = malloc(n);
    s->argv = calloc(count + 1, sizeof *s->argv);
    s->envp = calloc(count + 1, sizeof *s->envp);
    if (s->copy == NULL || s->argv == NULL || s->envp == NULL) { snprintf(err, errn, "out of memory"); return -1; }
    memcpy(s->copy, p, n);
    int argc = 0, envc = 0;
    for (char *r = s->copy, *next; r < s->copy + n; r = next) {
        next = r + strlen(r) + 1;
        char *v = strchr(r, '=');
        if (v == NULL) { snprintf(err, errn, "bad record \"%.40s\"", r); return -1; }
        *v++ = 0;
        if (strcmp(r, "arg") == 0) s->argv[argc++] = v;
        else if (strcmp(r, "env") == 0) s->envp[envc++] = v;
        else if (strcmp(r, "cwd") == 0) s->cwd = v;
        else if (strcmp(r, "uid") == 0) s->uid = (uid_t)strtoul(v, NULL, 10);
        else if (strcmp(r, "gid") == 0) s->gid = (gid_t)strtoul(v, NULL, 10);
        else if (strcmp(r, "groups") == 0) {
            for (char *g = v; *g && s->ngroups < 64; g++) {
                s->groups[s->ngroups++] = (gid_t)strtoul(g, &g, 10);
                if (*g != ',') break;
            }
        } else if (strcmp(r, "tty") == 0) s->tty = v[0] == '1';
        else if (strcmp(r, "stdin") == 0) s->with_stdin = v[0] == '1';
        else if (strcmp(r, "readonly") == 0) s->readonly = v[0] == '1';
        else if (strcmp(r, "volatile") == 0) s->volatile_disk = v[0] == '1';
        else if (strcmp(r, "mount") == 0) {
            if (s->nmounts == (int)(sizeof s->mounts / sizeof s->mounts[0])) {
                snprintf(err, errn, "more than %zu mounts", sizeof s->mounts / sizeof s->mounts[0]);
                return -1;
            }
            s->mounts[s->nmounts++] = v;
        }
        else if (strcmp(r, "hostname") == 0) s->hostname = v;
        else if (strcmp(r, "hosts") == 0) s->hosts = v;
        else if (strcmp(r, "resolv") == 0) s->resolv = v;
        else if (strcmp(r, "mac") == 0) s->mac = v;
        else if (strcmp(r, "net") == 0) s->net = v;
        else if (strcmp(r, "gateway") == 0) s->gateway = v;
        else if (strcmp(r, "mtu") == 0) s->mtu = v;
        else if (strcmp(r, "seed") == 0) s->seed = v;
        else if (strcmp(r, "time") == 0) s->time = v;
        else if (strcmp(r, "root") == 0) s->root = v;
        else if (strcmp(r, "chroot") == 0) s->chroot = v;
        else if (strcmp(r, "image-bytes") == 0) s->image_bytes = v;
        else if (strcmp(r, "rw-bytes") == 0) s->rw_bytes = v;
        /* unknown keys are ignored, so the host can add some before every guest knows them */
    }
    if (argc == 0) { snprintf(err, errn, "process spec without arguments"); return -1; }
    return 0;
}

static void spec_free(struct spec *s) {
    free(s->copy);
    free(s->argv);
    free(s->envp);
}

static void write_file(const char *path, const char *text) {
    if (unlink(path) != 0 && errno != ENOENT) { say("unlink %s: %s", path, strerror(errno)); return; }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) { say("%s: %s", path, strerror(errno)); return; }
    if (write_all(fd, text, strlen(text)) != 0) say("writing %s: %s", path, strerror(errno));
    if (close(fd) != 0) say("closing %s: %s", path, strerror(errno));
}

/* One interface ioctl; a failure is a start-up error the host reports (a sandbox without its network must not run). */
static void if_ioctl(int sock, unsigned long req, struct ifreq *ifr, const char *what) {
    if (ioctl(sock, req, ifr) != 0) fatal("configuring %s: %s: %s", ifr->ifr_name, what, strerror(errno));
}

static void if_up(int sock, const char *name) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    if_ioctl(sock, SIOCGIFFLAGS, &ifr, "SIOCGIFFLAGS");
    ifr.ifr_flags |= IFF_UP;
    if_ioctl(sock, SIOCSIFFLAGS, &ifr, "SIOCSIFFLAGS (up)");
}

static struct sockaddr_in inet_of(const char *text, const char *what) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    if (inet_pton(AF_INET, text, &a.sin_addr) != 1) fatal("bad START: %s \"%.40s\" is not an IPv4 address", what, text);
    return a;
}

/*
 * lo up; with a NIC (START's mac=): the interface with that MAC gets net=ADDRESS/PREFIX, mtu=, is brought up, and the
 * default route goes via gateway=. Plain ioctls (SIOCSIFADDR, SIOCADDRT): IPv4 needs nothing netlink adds.
 */
/* "aa:bb:cc:dd:ee:ff" into 6 bytes; -1 if it is not that. */
static int mac_of(const char *text, unsigned char out[6]) {
    unsigned v[6];
    char end;
    if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6) return -1;
    for (int i = 0; i < 6; i++) out[i] = (unsigned char)v[i];
    return 0;
}

/*
 * A restored VM's card has the template's MAC (virtio-net's state, MAC included, comes from the snapshot): the one
 * card there is (the snapshot was made with exactly one, or none) takes START's, as `ip link set address` would
 * (the driver tells QEMU through the control queue). Waits, bounded, for the card to appear after virtio_net loads.
 */
static void adopt_mac(int sock, const char *mac) {
    unsigned char want[6];
    char name[IFNAMSIZ] = "";
    if (mac_of(mac, want) != 0) fatal("bad START: mac=%.40s", mac);
    long long deadline = now_ms() + DEVICE_WAIT_MS;
    while (name[0] == 0) {
        DIR *d = opendir("/sys/class/net");
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL)
            if (e->d_name[0] != '.' && strcmp(e->d_name, "lo") != 0 && strlen(e->d_name) < sizeof name)
                memcpy(name, e->d_name, strlen(e->d_name) + 1);
        if (d != NULL && closedir(d) != 0) fatal("closedir: %s", strerror(errno));
        if (name[0]) break;
        if (now_ms() > deadline) fatal("no network card after %d ms", DEVICE_WAIT_MS);
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    ifr.ifr_hwaddr.sa_family = 1; /* ARPHRD_ETHER */
    memcpy(ifr.ifr_hwaddr.sa_data, want, 6);
    if_ioctl(sock, SIOCSIFHWADDR, &ifr, "SIOCSIFHWADDR");
}

/* lo, up at boot before HELLO: the same in every sandbox, so a restored VM has it already (see dev_setup). */
static void loopback_up(void) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) fatal("socket: %s", strerror(errno));
    if_up(sock, "lo");
    if (close(sock) != 0) fatal("close: %s", strerror(errno));
}

static void network_up(const struct spec *s) {
    if (s->mac == NULL) return; /* --network none: lo only (loopback_up) */
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) fatal("socket: %s", strerror(errno));
    if (s->mac != NULL && snapshot_boot) adopt_mac(sock, s->mac);
    if (s->mac != NULL) {
        char name[IFNAMSIZ], addr[64];
        find_entry("/sys/class/net", "address", s->mac, NULL, name, sizeof name);
        const char *slash = s->net == NULL ? NULL : strchr(s->net, '/');
        if (slash == NULL || (size_t)(slash - s->net) >= sizeof addr)
            fatal("bad START: a NIC needs net=ADDRESS/PREFIX");
        memcpy(addr, s->net, (size_t)(slash - s->net));
        addr[slash - s->net] = 0;
        char *end;
        long prefix = strtol(slash + 1, &end, 10), mtu = s->mtu == NULL ? 1500 : strtol(s->mtu, NULL, 10);
        if (*end != 0 || end == slash + 1 || prefix < 1 || prefix > 32) fatal("bad START: net=%.40s", s->net);
        if (mtu < 68 || mtu > 65535) fatal("bad START: mtu=%.20s", s->mtu);
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
        struct sockaddr_in a = inet_of(addr, "net");
        memcpy(&ifr.ifr_addr, &a, sizeof a);
        if_ioctl(sock, SIOCSIFADDR, &ifr, "SIOCSIFADDR");
        a.sin_addr.s_addr = htonl(0xffffffffu << (32 - prefix));
        memcpy(&ifr.ifr_netmask, &a, sizeof a);
        if_ioctl(sock, SIOCSIFNETMASK, &ifr, "SIOCSIFNETMASK");
        ifr.ifr_mtu = (int)mtu;
        if_ioctl(sock, SIOCSIFMTU, &ifr, "SIOCSIFMTU");
        if_up(sock, name);
        if (s->gateway == NULL) { /* a pod network without a default route (its CNI gave none): the subnet only */
            if (close(sock) != 0) fatal("close: %s", strerror(errno));
            return;
        }
        struct rtentry rt;
        memset(&rt, 0, sizeof rt);
        struct sockaddr_in any = inet_of("0.0.0.0", "route"), gw = inet_of(s->gateway, "gateway");
        memcpy(&rt.rt_dst, &any, sizeof any);
        memcpy(&rt.rt_genmask, &any, sizeof any);
        memcpy(&rt.rt_gateway, &gw, sizeof gw);
        rt.rt_flags = RTF_UP | RTF_GATEWAY;
        rt.rt_dev = name;
        if (ioctl(sock, SIOCADDRT, &rt) != 0)
            fatal("configuring %s: default route via %s: %s", name, s->gateway, strerror(errno));
    }
    if (close(sock) != 0) fatal("close: %s", strerror(errno));
}

/* RNDADDENTROPY, RNDRESEEDCRNG of linux/random.h (musl's headers do not carry it) */
#define KILN_RNDADDENTROPY  0x40085203
#define KILN_RNDRESEEDCRNG  0x5207

/*
 * What must be this VM's own at every start, above all after a restore, where every VM of a snapshot wakes with the
 * same memory (docs/vm.md, "Snapshot start"): START's seed= is credited to the kernel's RNG and the CRNG reseeded, so
 * /dev/urandom, getrandom() and the lazily made boot_id differ from every other VM's; START's time= sets the clock
 * (the snapshot's is minutes or days old). A guest without seed= (an older relay) keeps its boot's RNG.
 */
static void fresh_start(const struct spec *s) {
    if (s->time != NULL) {
        char *end;
        long long sec = strtoll(s->time, &end, 10);
        long nsec = 0;
        if (*end == '.') nsec = strtol(end + 1, &end, 10);
        if (*end != 0 || sec <= 0 || nsec < 0 || nsec > 999999999) fatal("bad START: time=%.40s", s->time);
        struct timespec ts = { (time_t)sec, nsec };
        if (clock_settime(CLOCK_REALTIME, &ts) != 0) fatal("setting the clock: %s", strerror(errno));
    }
    if (s->seed == NULL) return;
    struct { int entropy_count, buf_size; unsigned char buf[128]; } pool;
    size_t n = strlen(s->seed);
    if (n % 2 != 0 || n / 2 > sizeof pool.buf || n < 64) fatal("bad START: seed of %zu hex digits", n);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s->seed + 2 * i, "%2x", &v) != 1) fatal("bad START: seed is not hex");
        pool.buf[i] = (unsigned char)v;
    }
    pool.buf_size = (int)(n / 2);
    pool.entropy_count = pool.buf_size * 8;
    int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    if (fd < 0) fatal("/dev/urandom: %s", strerror(errno));
    if (ioctl(fd, KILN_RNDADDENTROPY, &pool) != 0) fatal("RNDADDENTROPY: %s", strerror(errno));
    /* ENODATA: the CRNG was not ready yet, and the credit above is what made it so, from this seed */
    if (ioctl(fd, KILN_RNDRESEEDCRNG) != 0 && errno != ENODATA) fatal("RNDRESEEDCRNG: %s", strerror(errno));
    if (close(fd) != 0) fatal("close: %s", strerror(errno));
    memset(&pool, 0, sizeof pool);
}

/* "0" or "1" into the virtio bus's drivers_autoprobe: whether a driver that registers binds the devices present. */
static void virtio_autoprobe(const char *on) {
    int fd = open("/sys/bus/virtio/drivers_autoprobe", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write_all(fd, on, 1) != 0) fatal("/sys/bus/virtio/drivers_autoprobe: %s", strerror(errno));
    if (close(fd) != 0) fatal("close: %s", strerror(errno));
}

/*
 * After START in a VM restored from a snapshot: autoprobe back on, and every virtio device that has no driver yet (the
 * disks, the card) offered to the bus's drivers (drivers_probe: a synchronous probe). A device no loaded driver wants
 * is left as it is (EINVAL/ENODEV).
 */
static void bind_late_devices(void) {
    virtio_autoprobe("1");
    DIR *d = opendir("/sys/bus/virtio/devices");
    if (d == NULL) fatal("/sys/bus/virtio/devices: %s", strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[300];
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/sys/bus/virtio/devices/%s/driver", e->d_name);
        if (access(path, F_OK) == 0) continue;
        int fd = open("/sys/bus/virtio/drivers_probe", O_WRONLY | O_CLOEXEC);
        if (fd < 0) fatal("/sys/bus/virtio/drivers_probe: %s", strerror(errno));
        if (write_all(fd, e->d_name, strlen(e->d_name)) != 0 && errno != EINVAL && errno != ENODEV)
            fatal("probing %s: %s", e->d_name, strerror(errno));
        if (close(fd) != 0) fatal("close: %s", strerror(errno));
    }
    if (closedir(d) != 0) fatal("closedir: %s", strerror(errno));
}

/*
 * kiln.early-blk, in the template: the disk with virtio-blk serial `serial`, bound to its placeholder, is named in
 * `dev` for every VM restored from it (reading a serial is a request to the device), and the blocks the template's
 * kernel read from the placeholder (the partition scan's) are dropped, so that every later read comes from the
 * restored VM's own disk and nothing of the placeholder is in the snapshot. Its capacity (512-byte sectors) goes in
 * `sectors`: the restored kernel keeps it (QEMU tells a guest of a new size only on a resize), so after START it is
 * compared without asking the kernel again.
 */
static void early_disk_template(const char *serial, char *dev, size_t n, unsigned long long *sectors) {
    char path[400], size[32];
    find_device("/sys/block", "serial", serial, dev, n);
    snprintf(path, sizeof path, "/sys/block/%s/size", dev + 5);
    if (read_small(path, size, sizeof size) != 0) fatal("%s: %s", path, strerror(errno));
    *sectors = strtoull(size, NULL, 10);
    int fd = open(dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fatal("%s: %s", dev, strerror(errno));
    if (ioctl(fd, BLKFLSBUF, 0) != 0) fatal("BLKFLSBUF %s: %s", dev, strerror(errno));
    if (close(fd) != 0) fatal("close: %s", strerror(errno));
}

/*
 * After START in a VM restored from such a template: the disk bound as `dev` keeps the template's size (`sectors`),
 * which is right if it is the sandbox's disk's (`bytes`, START's). If not (or unsaid), the device is unbound, `dev`
 * cleared, and bind_late_devices probes it with its real size, found by its serial as after a boot.
 */
static void early_disk(char *dev, unsigned long long sectors, const char *bytes) {
    char path[400], link[300];
    char *end = NULL;
    unsigned long long want = bytes != NULL ? strtoull(bytes, &end, 10) : 0;
    if (bytes != NULL && *end == 0 && want % 512 == 0 && sectors == want / 512) return;
    snprintf(path, sizeof path, "/sys/block/%s/device", dev + 5);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n <= 0) fatal("%s: %s", path, n < 0 ? strerror(errno) : "empty link");
    link[n] = 0;
    const char *name = strrchr(link, '/') != NULL ? strrchr(link, '/') + 1 : link;
    int fd = open("/sys/bus/virtio/drivers/virtio_blk/unbind", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write_all(fd, name, strlen(name)) != 0) fatal("unbinding %s (%s): %s", dev, name, strerror(errno));
    if (close(fd) != 0) fatal("close: %s", strerror(errno));
    dev[0] = 0;
}

/* Whether the kernel command line carries the bare word `word` (e.g. "kiln.disks=fs"). */
static int cmdline_has(const char *word) {
    size_t n = strlen(word);
    for (const char *t = cmdline; (t = strstr(t, word)) != NULL; t += n)
        if ((t == cmdline || t[-1] == ' ') && (t[n] == ' ' || t[n] == 0)) return 1;
    return 0;
}

/* What filesystem the device holds, by its superblock's magic: 'e' erofs, 'x' ext2/3/4, 0 neither (or unreadable). */
static int fs_magic(const char *dev) {
    unsigned char sb[2048];
    int fd = open(dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t r = pread(fd, sb, sizeof sb, 0);
    if (close(fd) != 0 || r != (ssize_t)sizeof sb) return 0;
    if (sb[1024] == 0xe2 && sb[1025] == 0xe1 && sb[1026] == 0xf5 && sb[1027] == 0xe0) return 'e'; /* 0xE0F5E1E2 LE */
    if (sb[1080] == 0x53 && sb[1081] == 0xef) return 'x';                                      /* 0xEF53 LE */
    return 0;
}

/*
 * The image and writable disks told apart by their filesystems (erofs, ext4), for VMMs that cannot give a virtio-blk
 * serial (Firecracker: kiln.disks=fs): the host made both, so each kind appears exactly once. Polls like find_entry.
 */
static void find_disks_by_fs(char *image, char *rw, size_t n) {
    long long deadline = now_ms() + DEVICE_WAIT_MS;
    for (;;) {
        DIR *d = opendir("/sys/block");
        struct dirent *e;
        image[0] = rw[0] = 0;
        while (d != NULL && (e = readdir(d)) != NULL) {
            char dev[300];
            if (strncmp(e->d_name, "vd", 2) != 0) continue;
            snprintf(dev, sizeof dev, "/dev/%s", e->d_name);
            int kind = fs_magic(dev);
            if (kind == 'e') snprintf(image, n, "%s", dev);
            if (kind == 'x') snprintf(rw, n, "%s", dev);
        }
        if (d != NULL && closedir(d) != 0) fatal("closedir: %s", strerror(errno));
        if (image[0] && rw[0]) return;
        if (now_ms() > deadline)
            fatal("no %s disk among /sys/block/vd* after %d ms", image[0] ? "ext4 (writable)" : "erofs (image)",
                  DEVICE_WAIT_MS);
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
    }
}

/*
 * The sandbox's own mounts, in the new root (docs/volumes.md): virtio-fs shares by tag (the host enforces their
 * read-only side too) and tmpfs. The target is made with mkdir -p; a symlink on the way stays inside the guest, which
 * is the sandbox itself.
 */
static void mount_extra(const struct spec *s) {
    for (int i = 0; i < s->nmounts; i++) {
        char rec[4096], *f[5];
        int n = 0;
        if ((size_t)snprintf(rec, sizeof rec, "%s", s->mounts[i]) >= sizeof rec) fatal("mount record too long");
        for (char *p = rec; p != NULL && n < 5; n++) {
            f[n] = p;
            p = strchr(p, '\t');
            if (p != NULL) *p++ = 0;
        }
        if (n != 5 || f[2][0] != '/') fatal("bad mount record \"%.100s\"", s->mounts[i]);
        unsigned long flags = 0;
        for (char *w = f[3], *next; *w; w = next) {
            next = w + strcspn(w, ",");
            if (*next) *next++ = 0;
            if (strcmp(w, "ro") == 0) flags |= MS_RDONLY;
            else if (strcmp(w, "nosuid") == 0) flags |= MS_NOSUID;
            else if (strcmp(w, "nodev") == 0) flags |= MS_NODEV;
            else if (strcmp(w, "noexec") == 0) flags |= MS_NOEXEC;
            else fatal("unknown mount flag \"%.20s\"", w);
        }
        if (mkdir_p(f[2]) != 0) fatal("mkdir %s: %s", f[2], strerror(errno));
        if (mount(f[1], f[2], f[0], flags, f[4][0] ? f[4] : NULL) != 0)
            fatal("mounting %s (%s) on %s: %s", f[1], f[0], f[2], strerror(errno));
    }
}

static void disk_root(char *image, char *rw, size_t n);
static void enter_newroot(const struct spec *s);

/*
 * /dev as a container's: devpts, /dev/shm, the fd links. Made at boot, before HELLO, in the devtmpfs that later moves
 * into the new root with everything mounted under it: no part of it depends on the sandbox, so a VM restored from a
 * snapshot has it already and does not pay it after START (under TCG every kernel path run after a restore is
 * translated anew).
 */
static void dev_setup(void) {
    xmkdir("/dev/pts", 0755);
    xmkdir("/dev/shm", 01777);
    xmount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    xmount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    const char *links[][2] = { { "/proc/self/fd", "/dev/fd" }, { "/proc/self/fd/0", "/dev/stdin" },
                               { "/proc/self/fd/1", "/dev/stdout" }, { "/proc/self/fd/2", "/dev/stderr" },
                               { "pts/ptmx", "/dev/ptmx" } };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        if (i == 4 && unlink(links[i][1]) != 0 && errno != ENOENT) fatal("unlink /dev/ptmx: %s", strerror(errno));
        if (symlink(links[i][0], links[i][1]) != 0 && errno != EEXIST) fatal("symlink %s: %s", links[i][1], strerror(errno));
    }
}

/* The root at /newroot (the image and writable disks under overlayfs, or a virtio-fs share), then make it the root. */
static void enter_root(const struct spec *s) {
    char image[300], rw[300];
    xmkdir("/newroot", 0755);
    if (s->root != NULL) {
        /* root=TAG (containerd's bundle, docs/containerd.md): the host's rootfs directory itself, through virtiofsd;
         * writes land in containerd's snapshot, as they would under runc */
        xmount(s->root, "/newroot", "virtiofs", MS_NOATIME, NULL);
    } else {
        disk_root(image, rw, sizeof image);
    }
    enter_newroot(s);
}

/* The image disk (erofs) under overlayfs with the writable disk (ext4), mounted at /newroot. */
static void disk_root(char *image, char *rw, size_t n) {
    if (cmdline_has("kiln.disks=fs")) {
        find_disks_by_fs(image, rw, n);
    } else { /* QEMU: the virtio-blk serials the host gave them */
        if (early_image[0]) snprintf(image, n, "%s", early_image); /* kept from the template: no serial to read */
        else find_device("/sys/block", "serial", "kiln-image", image, n);
        if (early_rw[0]) snprintf(rw, n, "%s", early_rw);
        else find_device("/sys/block", "serial", "kiln-rw", rw, n);
    }
    xmkdir("/mnt", 0755);
    xmkdir("/mnt/image", 0755);
    xmkdir("/mnt/rw", 0755);
    xmount(image, "/mnt/image", "erofs", MS_RDONLY, NULL);
    xmount(rw, "/mnt/rw", "ext4", MS_NOATIME, "noinit_itable");
    xmkdir("/mnt/rw/upper", 0755);
    xmkdir("/mnt/rw/work", 0755);
    xmount("overlay", "/newroot", "overlay", 0, "lowerdir=/mnt/image,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work");
}

/* /newroot (mounted) becomes the root: /dev, /proc, /sys moved in, /dev's links, names, network, the extra mounts. */
static void enter_newroot(const struct spec *s) {
    xmkdir("/newroot/dev", 0755);
    xmkdir("/newroot/proc", 0555);
    xmkdir("/newroot/sys", 0555);
    xmount("/dev", "/newroot/dev", NULL, MS_MOVE, NULL);
    xmount("/proc", "/newroot/proc", NULL, MS_MOVE, NULL);
    xmount("/sys", "/newroot/sys", NULL, MS_MOVE, NULL);
    /* initramfs cannot be pivoted away from: move the new root over / and chroot into it (as switch_root does) */
    if (chdir("/newroot") != 0) fatal("chdir /newroot: %s", strerror(errno));
    xmount(".", "/", NULL, MS_MOVE, NULL);
    if (chroot(".") != 0) fatal("chroot: %s", strerror(errno));
    if (chdir("/") != 0) fatal("chdir /: %s", strerror(errno));
    if (s->hostname != NULL) {
        if (sethostname(s->hostname, strlen(s->hostname)) != 0) fatal("sethostname: %s", strerror(errno));
        char line[300];
        snprintf(line, sizeof line, "%s\n", s->hostname);
        if (mkdir("/etc", 0755) != 0 && errno != EEXIST) fatal("mkdir /etc: %s", strerror(errno));
        write_file("/etc/hostname", line);
    }
    if (s->hosts != NULL) write_file("/etc/hosts", s->hosts);
    if (s->resolv != NULL) write_file("/etc/resolv.conf", s->resolv);
    network_up(s);
    mount_extra(s);
    if (s->readonly) xmount("/", "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
}

/* ---- processes ---- */

static void close_fd(int *fd) {
    if (*fd >= 0 && close(*fd) != 0) say("close: %s", strerror(errno));
    *fd = -1;
}

__attribute__((noreturn)) static void child_fail(const char *what, int code) {
    char msg[600];
    int e = errno;
    int n = snprintf(msg, sizeof msg, "kiln-init: %s: %s\n", what, strerror(e));
    if (write_all(2, msg, (size_t)n) != 0) { /* only the exit code tells */ }
    _exit(code);
}

/* In the forked child. Exit codes as Docker's: 125 set-up, 126 not executable, 127 not found. */
/*
 * A container of a pod (chroot=PATH): in a mount namespace of its own, /proc (new), /dev and /sys (bound from the
 * VM's) inside PATH, which becomes its root. It shares the VM's network (the pod's: localhost between containers),
 * its pid namespace and its kernel; the VM is the isolation boundary, as in Kata's pods.
 */
/* openat2(2)'s request (linux/openat2.h, which musl's headers lack; the layout is the kernel's ABI) */
struct open_how_v0 {
    uint64_t flags, mode, resolve;
};
#define KILN_RESOLVE_NO_XDEV 0x01
#define KILN_RESOLVE_NO_MAGICLINKS 0x02
#define KILN_RESOLVE_IN_ROOT 0x10

/*
 * CRI's per-pod file (the pod's /etc/hosts, /etc/resolv.conf or /etc/hostname, sent with the EXEC): its text in a
 * file of a tmpfs of this process's own mount namespace (enter_container's, mounted over the VM's /dev/shm there after
 * the container's /dev was bound: a memfd cannot be the source of a bind, it is in no mount namespace), bound over
 * ROOT/etc/NAME, as CRI binds the sandbox's file into a runc container. The container's root (its image's snapshot) is
 * not written, except for an empty mount point where the image has none. etc/NAME is resolved with ROOT as its root
 * (RESOLVE_IN_ROOT: an image whose /etc is a symlink, even an absolute one or one through "..", gets the file where
 * that link leads inside its own root, as runc resolves a bind's target, never elsewhere in the VM) and within its
 * own file system (RESOLVE_NO_XDEV: an /etc linked to /dev or /proc/sys/kernel would lead into the VM's devtmpfs, which
 * the pod's containers share, or onto procfs, bound there just before; review of 2026-12-07), and the bind goes
 * onto the file that open found (its /proc/self/fd link), not onto a path resolved a second time. A root without
 * /etc, or whose etc/NAME is a symlink, on another mount or cannot be made (read-only), keeps its own.
 */
static void bind_text(const char *root, const char *name, const char *text) {
    char at[64], src[64], rel[64];
    int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) child_fail(root, 125);
    snprintf(rel, sizeof rel, "etc/%s", name);
    /* O_NONBLOCK: an image's fifo there must not hold the container's start; only a regular file is bound over */
    struct open_how_v0 how = { .flags = O_RDONLY | O_NONBLOCK | O_CREAT | O_NOFOLLOW | O_CLOEXEC, .mode = 0644,
                               .resolve = KILN_RESOLVE_IN_ROOT | KILN_RESOLVE_NO_MAGICLINKS | KILN_RESOLVE_NO_XDEV };
    int point = (int)syscall(SYS_openat2, dir, rel, &how, sizeof how);
    struct stat st;
    if (point >= 0 && fstat(point, &st) != 0) child_fail(rel, 125);
    if (point < 0 || !S_ISREG(st.st_mode)) {
        say("%s/%s: %s (the container keeps its own)", root, rel, point < 0 ? strerror(errno) : "not a regular file");
        if (point >= 0 && close(point) != 0) child_fail("close", 125);
        if (close(dir) != 0) child_fail("close", 125);
        return;
    }
    if (close(dir) != 0) child_fail("close", 125);
    snprintf(src, sizeof src, "/dev/shm/%s", name);
    int fd = open(src, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) child_fail(src, 125);
    if (write_all(fd, text, strlen(text)) != 0) child_fail(src, 125);
    if (close(fd) != 0) child_fail(src, 125);
    snprintf(at, sizeof at, "/proc/self/fd/%d", point);
    if (mount(src, at, NULL, MS_BIND, NULL) != 0) child_fail(rel, 125);
    if (close(point) != 0) child_fail("close", 125);
}

static void enter_container(const char *root, const struct spec *s) {
    char at[4200];
    const char *dirs[] = { "proc", "dev", "sys" };
    if (unshare(CLONE_NEWNS) != 0) child_fail("unshare(CLONE_NEWNS)", 125);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) child_fail("making / private", 125);
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(at, sizeof at, "%s/%s", root, dirs[i]);
        if (mkdir(at, 0755) != 0 && errno != EEXIST) child_fail(at, 125);
        int r = i == 0 ? mount("proc", at, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)
                       : mount(i == 1 ? "/dev" : "/sys", at, NULL, MS_BIND | MS_REC, NULL);
        if (r != 0) child_fail(at, 125);
    }
    if (s->hosts != NULL || s->resolv != NULL || s->hostname != NULL) {
        if (mount("kiln-pod-files", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") != 0)
            child_fail("a tmpfs for the pod's files", 125);
        if (s->hosts != NULL) bind_text(root, "hosts", s->hosts);
        if (s->resolv != NULL) bind_text(root, "resolv.conf", s->resolv);
        if (s->hostname != NULL) {
            char line[300];
            snprintf(line, sizeof line, "%s\n", s->hostname);
            bind_text(root, "hostname", line);
        }
    }
    if (chdir(root) != 0) child_fail(root, 125);
    if (chroot(".") != 0) child_fail("chroot", 125);
}

__attribute__((noreturn)) static void exec_child(const struct spec *s, int in, int out, int err) {
    sigset_t none;
    extern char **environ;
    if (setsid() < 0) child_fail("setsid", 125);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(125);
    if (s->tty && ioctl(0, TIOCSCTTY, 0) != 0) child_fail("TIOCSCTTY", 125);
    if (sigemptyset(&none) != 0 || sigprocmask(SIG_SETMASK, &none, NULL) != 0) child_fail("sigprocmask", 125);
    if (s->chroot != NULL) {
        enter_container(s->chroot, s);
        if (s->cwd[0] == '/' && mkdir_p(s->cwd) != 0) child_fail(s->cwd, 125);
    }
    if (setgroups((size_t)s->ngroups, s->groups) != 0) child_fail("setgroups", 125);
    if (setgid(s->gid) != 0) child_fail("setgid", 125);
    if (setuid(s->uid) != 0) child_fail("setuid", 125);
    if (chdir(s->cwd) != 0) child_fail(s->cwd, 125);
    environ = s->envp;
    execvp(s->argv[0], s->argv);
    char what[300];
    snprintf(what, sizeof what, "exec %s", s->argv[0]);
    child_fail(what, errno == ENOENT ? 127 : 126);
}

static struct stream *stream_of(int id) {
    for (int i = 0; i < MAX_STREAMS; i++)
        if (streams[i].used && streams[i].id == id) return &streams[i];
    return NULL;
}

/* Starts a process for stream `id`; a failure before fork is reported as that stream's stderr + exit 125. */
static void start_process(int id, const struct spec *s) {
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, m = -1;
    struct stream *st = NULL;
    for (int i = 0; i < MAX_STREAMS && st == NULL; i++) if (!streams[i].used) st = &streams[i];
    if (st == NULL || stream_of(id) != NULL) {
        send_text(T_STDERR, id, "kiln-init: %s\n", st == NULL ? "too many processes" : "stream in use");
        send_text(T_EXIT, id, "125 0");
        return;
    }
    if (s->chroot == NULL && s->cwd[0] == '/' && mkdir_p(s->cwd) != 0) say("mkdir %s: %s", s->cwd, strerror(errno));
    if (s->tty) {
        const char *name;
        if ((m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 || grantpt(m) != 0 || unlockpt(m) != 0 ||
            (name = ptsname(m)) == NULL || (out[1] = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) goto fail;
        in[0] = err[1] = out[1];
    } else {
        if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) goto fail;
        if (s->with_stdin ? pipe2(in, O_CLOEXEC) != 0 : (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
            goto fail;
    }
    pid_t pid = fork();
    if (pid < 0) goto fail;
    if (pid == 0) exec_child(s, in[0], out[1], err[1]);
    memset(st, 0, sizeof *st);
    st->used = 1;
    st->id = id;
    st->pid = pid;
    st->tty = s->tty;
    if (s->tty) {
        st->in_fd = s->with_stdin ? m : -1;
        st->out_fd = m;
        st->err_fd = -1;
        if (close(out[1]) != 0 || set_nonblock(m) != 0) say("pty set-up: %s", strerror(errno));
    } else {
        st->in_fd = in[1];
        st->out_fd = out[0];
        st->err_fd = err[0];
        if (close(in[0]) != 0 || close(out[1]) != 0 || close(err[1]) != 0) say("close: %s", strerror(errno));
        if (set_nonblock(out[0]) != 0 || set_nonblock(err[0]) != 0 || (in[1] >= 0 && set_nonblock(in[1]) != 0))
            say("O_NONBLOCK: %s", strerror(errno));
    }
    send_text(T_STARTED, id, "%d", (int)pid);
    return;
fail:
    send_text(T_STDERR, id, "kiln-init: starting the process: %s\n", strerror(errno));
    send_text(T_EXIT, id, "125 0");
    if (s->tty) { in[0] = err[1] = -1; } /* the same descriptor as out[1] */
    int fds[] = { in[0], in[1], out[0], out[1], err[0], err[1], m };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) close_fd(&fds[i]);
}

/* Closes the stream's descriptors (the pty master once) and forgets the stream. */
static void stream_end(struct stream *st) {
    send_text(T_EXIT, st->id, "%d %d", st->code, st->sig);
    if (st->tty) {
        st->in_fd = -1;
        close_fd(&st->out_fd);
    } else {
        close_fd(&st->in_fd);
        close_fd(&st->out_fd);
        close_fd(&st->err_fd);
    }
    buf_free(&st->in);
    if (st->id == 0) { main_done = 1; main_done_ms = now_ms(); }
    st->used = 0;
}

static void output_read(struct stream *st, int *fd, int type) {
    char data[16384];
    ssize_t r = read(*fd, data, sizeof data);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r <= 0) { /* EOF; EIO: the pty's last slave closed */
        if (st->tty) { st->in_fd = -1; }
        close_fd(fd);
        return;
    }
    send_frame(type, st->id, data, (size_t)r);
}

static void stdin_flush(struct stream *st) {
    ssize_t w = write(st->in_fd, st->in.p, st->in.len);
    if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        st->in.len = 0; /* the process no longer reads its stdin */
    } else buf_drop(&st->in, (size_t)w);
    if (st->in.len == 0 && st->stdin_closing && !st->tty) close_fd(&st->in_fd);
}

static void reap(void) {
    struct signalfd_siginfo si;
    while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) { /* coalesced: waitpid finds them all */ }
    for (;;) {
        int status;
        pid_t p = waitpid(-1, &status, WNOHANG);
        if (p < 0 && errno == EINTR) continue;
        if (p <= 0) return;
        for (int i = 0; i < MAX_STREAMS; i++) {
            struct stream *st = &streams[i];
            if (!st->used || st->pid != p || st->exited) continue;
            st->exited = 1;
            st->exited_ms = now_ms();
            st->sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
            st->code = WIFSIGNALED(status) ? 128 + st->sig : WEXITSTATUS(status);
        }
    }
}

static void host_frame(int type, int id, const unsigned char *p, size_t n) {
    char text[64];
    size_t k = n < sizeof text - 1 ? n : sizeof text - 1;
    memcpy(text, p, k);
    text[k] = 0;
    struct stream *st = stream_of(id);
    switch (type) {
    case T_EXEC: {
        struct spec s;
        char err[200];
        if (main_done) { send_text(T_STDERR, id, "kiln-init: the sandbox is stopping\n"); send_text(T_EXIT, id, "125 0"); break; }
        if (parse_spec(p, n, &s, err, sizeof err) != 0) {
            send_text(T_STDERR, id, "kiln-init: %s\n", err);
            send_text(T_EXIT, id, "125 0");
        } else start_process(id, &s);
        spec_free(&s);
        break;
    }
    case T_STDIN:
        if (st != NULL && st->in_fd >= 0 && !st->stdin_closing && buf_put(&st->in, p, n) != 0)
            say("out of memory for stdin");
        break;
    case T_STDIN_CLOSE:
        if (st == NULL || st->in_fd < 0 || st->stdin_closing) break;
        st->stdin_closing = 1;
        if (st->tty) {
            struct termios t;
            char eof = 4;
            if (tcgetattr(st->in_fd, &t) == 0) eof = (char)t.c_cc[VEOF];
            if (buf_put(&st->in, &eof, 1) != 0) say("out of memory for stdin");
        } else if (st->in.len == 0) close_fd(&st->in_fd);
        break;
    case T_SIGNAL: {
        int sig = atoi(text);
        if (st != NULL && !st->exited && sig > 0 && sig < 65 && kill(st->pid, sig) != 0 && errno != ESRCH)
            say("kill %d %d: %s", (int)st->pid, sig, strerror(errno));
        break;
    }
    case T_RESIZE: {
        unsigned rows, cols;
        struct winsize ws;
        if (st == NULL || !st->tty || sscanf(text, "%u %u", &rows, &cols) != 2) break;
        memset(&ws, 0, sizeof ws);
        ws.ws_row = (unsigned short)rows;
        ws.ws_col = (unsigned short)cols;
        if (ioctl(st->out_fd, TIOCSWINSZ, &ws) != 0) say("TIOCSWINSZ: %s", strerror(errno));
        break;
    }
    case T_BYE:
        bye = 1;
        break;
    default:
        break; /* HELLO/START again, or a type this guest does not know: ignored */
    }
}

static void serve(void) {
    for (;;) {
        int t, sid;
        unsigned char *pl;
        size_t len;
        while (next_frame(&t, &sid, &pl, &len) == 1) host_frame(t, sid, pl, len); /* e.g. read along with START */
        long long now = now_ms();
        int timeout = -1, stdin_full = 0;
        for (int i = 0; i < MAX_STREAMS; i++) {
            struct stream *st = &streams[i];
            if (!st->used) continue;
            stdin_full |= st->in.len > STDIN_HIGH;
            if (!st->exited) continue;
            if ((st->out_fd < 0 && st->err_fd < 0) || now - st->exited_ms >= DRAIN_MS) stream_end(st);
            else {
                int left = (int)(st->exited_ms + DRAIN_MS - now);
                if (timeout < 0 || left < timeout) timeout = left;
            }
        }
        if (main_done) {
            if (!rest_killed) { /* first pass after the main process: end everything else, as a container's end */
                rest_killed = 1;
                if (kill(-1, SIGKILL) != 0 && errno != ESRCH) say("kill -1: %s", strerror(errno));
            }
            int live = 0;
            for (int i = 0; i < MAX_STREAMS; i++) live += streams[i].used;
            if ((bye && outq.len == 0) || now - main_done_ms >= SHUTDOWN_MS) return;
            if (live == 0 && outq.len == 0) { settle(1, main_done_ms + SHUTDOWN_MS); return; }
            int left = (int)(main_done_ms + SHUTDOWN_MS - now);
            if (timeout < 0 || left < timeout) timeout = left;
        }
        if (port_reset) port_reconnect();
        struct pollfd pfd[2 + 3 * MAX_STREAMS];
        struct stream *owner[2 + 3 * MAX_STREAMS];
        int n = 0, paused = outq.len > OUT_HIGH;
        pfd[n++] = (struct pollfd){ port, (short)((stdin_full ? 0 : POLLIN) | (outq.len ? POLLOUT : 0)), 0 };
        pfd[n++] = (struct pollfd){ sig_fd, POLLIN, 0 };
        for (int i = 0; i < MAX_STREAMS; i++) {
            struct stream *st = &streams[i];
            if (!st->used) continue;
            if (st->out_fd >= 0 && !paused) { owner[n] = st; pfd[n++] = (struct pollfd){ st->out_fd, POLLIN, 0 }; }
            if (st->err_fd >= 0 && !paused) { owner[n] = st; pfd[n++] = (struct pollfd){ st->err_fd, POLLIN, 0 }; }
            if (st->in_fd >= 0 && st->in.len > 0) { owner[n] = st; pfd[n++] = (struct pollfd){ st->in_fd, POLLOUT, 0 }; }
        }
        if (poll(pfd, (nfds_t)n, timeout) < 0) {
            if (errno != EINTR) fatal("poll: %s", strerror(errno));
            continue;
        }
        if (pfd[1].revents) reap();
        if (pfd[0].revents & POLLOUT) port_flush();
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(port, inbuf + inlen, sizeof inbuf - inlen);
            if (r > 0) {
                inlen += (size_t)r;
                while (next_frame(&t, &sid, &pl, &len) == 1) host_frame(t, sid, pl, len);
            } else if (r == 0) { /* the host went away: nothing can be reported any more */
                struct timespec ts = { 0, 20000000 };
                nanosleep(&ts, NULL);
            } else if (port_lost(errno)) port_reset = 1;
            else if (errno != EAGAIN && errno != EINTR) fatal("reading the control port: %s", strerror(errno));
        }
        for (int i = 2; i < n; i++) {
            struct stream *st = owner[i];
            if (!pfd[i].revents || !st->used) continue;
            if (pfd[i].events & POLLOUT) { if (st->in_fd == pfd[i].fd) stdin_flush(st); }
            else if (pfd[i].fd == st->out_fd) output_read(st, &st->out_fd, T_STDOUT);
            else if (pfd[i].fd == st->err_fd) output_read(st, &st->err_fd, T_STDERR);
        }
    }
}

int main(void) {
    sigset_t all;
    char dev[300], err[200];
    int type, id;
    unsigned char *payload;
    size_t len;
    struct spec s;

    if (getpid() != 1) { say("must run as PID 1 of a kiln VM"); return 1; }
    if (mkdir("/dev", 0755) != 0 && errno != EEXIST) return 1;
    if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") != 0 && errno != EBUSY) return 1;
    int con = open("/dev/console", O_RDWR | O_CLOEXEC);
    if (con >= 0 && (dup2(con, 0) < 0 || dup2(con, 1) < 0 || dup2(con, 2) < 0 || close(con) != 0)) return 1;
    /* every signal is blocked; children are found through signalfd, the rest is for the processes */
    if (sigfillset(&all) != 0 || sigprocmask(SIG_BLOCK, &all, NULL) != 0) fatal("sigprocmask: %s", strerror(errno));
    sigset_t chld;
    if (sigemptyset(&chld) != 0 || sigaddset(&chld, SIGCHLD) != 0) fatal("sigset: %s", strerror(errno));
    if ((sig_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) fatal("signalfd: %s", strerror(errno));
    xmkdir("/proc", 0555);
    xmkdir("/sys", 0555);
    xmount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    xmount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    if (read_small("/proc/cmdline", cmdline, sizeof cmdline) != 0) fatal("/proc/cmdline: %s", strerror(errno));
    snapshot_boot = cmdline_has("kiln.snapshot");
    early_blk = snapshot_boot && cmdline_has("kiln.early-blk");
    load_modules(0);
    if (snapshot_boot) { /* the template: the late drivers registered, bound only after START (above) */
        virtio_autoprobe("0");
        load_modules(1);
        if (early_blk) {
            early_disk_template("kiln-image", early_image, sizeof early_image, &early_image_sectors);
            early_disk_template("kiln-rw", early_rw, sizeof early_rw, &early_rw_sectors);
        }
    }
    dev_setup();
    loopback_up();
    unsigned vport = vsock_port();
    if (vport != 0) {
        channel_port = vport;
        vsock_connect(vport);
    } else {
        find_device("/sys/class/virtio-ports", "name", "kiln.0", dev, sizeof dev);
        if ((port = open(dev, O_RDWR | O_CLOEXEC | O_NONBLOCK)) < 0) fatal("opening %s: %s", dev, strerror(errno));
    }

    read_frame(&type, &id, &payload, &len); /* the host speaks first */
    if (type != T_HELLO) fatal("expected HELLO from the host, got frame type %d", type);
    if (len < 10 || memcmp(payload, "version=1", 9) != 0 || (payload[9] != 0 && payload[9] != ','))
        fatal("the host speaks another protocol version (%.*s); this guest speaks %d", (int)(len < 40 ? len : 40),
              payload, PROTOCOL_VERSION);
    struct timespec up;
    long long up_ms = clock_gettime(CLOCK_BOOTTIME, &up) == 0 ? (long long)up.tv_sec * 1000 + up.tv_nsec / 1000000 : 0;
    char hello[64];
    int hn = snprintf(hello, sizeof hello, "version=%d%cuptime_ms=%lld%c", PROTOCOL_VERSION, 0, up_ms, 0);
    send_frame(T_HELLO, 0, hello, (size_t)hn);
    port_flush();
    read_frame(&type, &id, &payload, &len);
    while (type == T_HELLO && snapshot_boot) {
        /* restored from a snapshot taken right here: this relay is new and greets again; answer as at boot */
        long long now = clock_gettime(CLOCK_BOOTTIME, &up) == 0 ? (long long)up.tv_sec * 1000 + up.tv_nsec / 1000000 : 0;
        hn = snprintf(hello, sizeof hello, "version=%d%cuptime_ms=%lld%c", PROTOCOL_VERSION, 0, now, 0);
        send_frame(T_HELLO, 0, hello, (size_t)hn);
        port_flush();
        read_frame(&type, &id, &payload, &len);
    }
    if (type != T_START || id != 0) fatal("expected START on stream 0, got frame type %d on stream %d", type, id);
    if (parse_spec(payload, len, &s, err, sizeof err) != 0) fatal("bad START: %s", err);
    volatile_disk = s.volatile_disk;
    fresh_start(&s);
    if (early_blk && s.root == NULL) {
        early_disk(early_image, early_image_sectors, s.image_bytes);
        early_disk(early_rw, early_rw_sectors, s.rw_bytes);
    }
    /* nothing left to probe (no card, both disks kept): the bus stays as the template left it */
    if (snapshot_boot && (!early_blk || s.mac != NULL || !early_image[0] || !early_rw[0])) bind_late_devices();
    enter_root(&s);
    start_process(0, &s);
    spec_free(&s);
    serve();
    settle(0, now_ms() + 1000);
    power_off();
    return 0;
}
