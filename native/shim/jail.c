/*
 * The VMM's jail (docs/vm.md, "The VMM's jail"), entered by the VMM's process between the relay's clone and its exec:
 *
 *   1. the sandbox's network namespace (setns), the TAP opened there as QEMU would (the VMM never sees /dev/net/tun),
 *      the files it is given opened (as root: the image disk stays 0600, the VMM only gets a descriptor);
 *   2. its own mount namespace (from the clone) made private; a tmpfs on the jail directory with only the bound
 *      paths in it, each nosuid,nodev (but device nodes), noexec (but the binary and its libraries), read-only (but
 *      the sockets' directory); pivot_root into it, the old root detached, the tmpfs read-only;
 *   3. no supplementary groups, the VMM's gid and uid, every capability dropped (bounding, ambient, then permitted,
 *      effective and inheritable), no_new_privs;
 *   4. the seccomp filter, the very last step: the exec that follows runs under it.
 *
 * Runs in a single-threaded child before exec: no stdio, every return value checked, a failure is one line in err.
 */
#define _GNU_SOURCE
#include "jail.h"
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's ABI, spelled here: musl's headers carry no linux/ ones (as kiln-init's vsock address). */
#define TUNSETIFF          0x400454ca /* _IOW('T', 202, int) */
#define TUNSETPERSIST      0x400454cb /* _IOW('T', 203, int) */
#define TUNSETOWNER        0x400454cc /* _IOW('T', 204, int) */
#define TUNSETGROUP        0x400454ce /* _IOW('T', 206, int) */
#define IFF_TAP            0x0002
#define IFF_NO_PI          0x1000
#define IFF_VNET_HDR       0x4000
#define CAP_VERSION_3      0x20080522
#define SECCOMP_SET_MODE_FILTER 1
#define BPF_MAXINSNS       4096
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT           47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

struct cap_header { unsigned version; int pid; };
struct cap_data { unsigned effective, permitted, inheritable; };
struct bpf_prog { unsigned short len; void *filter; };

__attribute__((format(printf, 3, 4))) static int failed(char *err, size_t errn, const char *fmt, ...) {
    int e = errno;
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err, errn, "%s: %s", what, strerror(e));
    return -1;
}

/* A path kiln binds at the same place inside the jail: absolute, and no "." or ".." component can lead outside it. */
static int jail_path_ok(const char *p) {
    if (p[0] != '/' || strlen(p) >= 2048) return 0;
    for (const char *c = p; *c; ) {
        while (*c == '/') c++;
        size_t n = strcspn(c, "/");
        if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) return 0;
        c += n;
    }
    return 1;
}

int jail_load(struct vmm_setup *s, const char *mounts_file, const char *seccomp_file, char *err, size_t errn) {
    struct buf b = { 0 };
    if (read_file(mounts_file, &b) != 0) return failed(err, errn, "%s", mounts_file);
    size_t lines = 0;
    for (size_t i = 0; i < b.len; i++) lines += b.p[i] == '\n';
    if (b.len == 0 || b.p[b.len - 1] != '\n' || memchr(b.p, 0, b.len) != NULL) {
        snprintf(err, errn, "%s: not lines of KIND<TAB>PATH", mounts_file);
        return -1;
    }
    s->mounts = calloc(lines, sizeof *s->mounts);
    if (s->mounts == NULL) return failed(err, errn, "%s", mounts_file);
    b.p[b.len - 1] = 0;
    for (char *line = b.p, *next; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL) *next++ = 0;
        char *tab = strchr(line, '\t');
        struct jail_mount *m = &s->mounts[s->nmounts];
        if (tab == NULL || !jail_path_ok(tab + 1)) {
            snprintf(err, errn, "%s: bad line \"%.200s\" (KIND<TAB>/ABSOLUTE/PATH)", mounts_file, line);
            return -1;
        }
        *tab = 0;
        if (strcmp(line, "ro") == 0) m->kind = JAIL_RO;
        else if (strcmp(line, "exec") == 0) m->kind = JAIL_EXEC;
        else if (strcmp(line, "rw") == 0) m->kind = JAIL_RW;
        else if (strcmp(line, "dev") == 0) m->kind = JAIL_DEV;
        else { snprintf(err, errn, "%s: unknown kind \"%.20s\" (ro, exec, rw, dev)", mounts_file, line); return -1; }
        m->path = tab + 1;
        s->nmounts++;
    }
    if (seccomp_file != NULL) {
        struct buf f = { 0 };
        if (read_file(seccomp_file, &f) != 0) return failed(err, errn, "%s", seccomp_file);
        if (f.len == 0 || f.len % 8 != 0 || f.len / 8 > BPF_MAXINSNS) {
            snprintf(err, errn, "%s: not a seccomp filter (%zu bytes: 1..%d instructions of 8)", seccomp_file, f.len,
                     BPF_MAXINSNS);
            return -1;
        }
        s->filter = (unsigned char *)f.p;
        s->filter_len = f.len / 8;
    }
    return 0; /* b.p is kept: the mounts' paths point into it */
}

/* fd moved above the descriptors the VMM is given (JAIL_FD_MAX), close-on-exec; -1 on failure (fd closed). */
int move_high(int fd) {
    if (fd < 0) return -1;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, JAIL_FD_MAX);
    int e = errno;
    if (close(fd) != 0 && h >= 0) { e = errno; if (close(h) != 0) { /* keep the first error */ } h = -1; }
    errno = e;
    return h;
}

static int mkdir_p(char *path, mode_t mode) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int r = mkdir(path, mode);
        *p = '/';
        if (r != 0 && errno != EEXIST) return -1;
    }
    return mkdir(path, mode) != 0 && errno != EEXIST ? -1 : 0;
}

/* Binds m->path at the same path under root, then sets the bind's own flags (a bind keeps its source's otherwise). */
static int bind_one(const char *root, const struct jail_mount *m, char *err, size_t errn) {
    static const unsigned long flags[] = {
        [JAIL_RO] = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
        [JAIL_EXEC] = MS_RDONLY | MS_NOSUID | MS_NODEV,
        [JAIL_RW] = MS_NOSUID | MS_NODEV | MS_NOEXEC,
        [JAIL_DEV] = MS_RDONLY | MS_NOSUID | MS_NOEXEC, /* opening a device to write it is not a write to its fs */
    };
    char target[4096];
    struct stat st;
    if (stat(m->path, &st) != 0) return failed(err, errn, "%s", m->path);
    if ((size_t)snprintf(target, sizeof target, "%s%s", root, m->path) >= sizeof target) {
        errno = ENAMETOOLONG;
        return failed(err, errn, "%s", m->path);
    }
    if (S_ISDIR(st.st_mode)) {
        if (mkdir_p(target, 0755) != 0) return failed(err, errn, "mkdir %s", target);
    } else {
        char *slash = strrchr(target, '/');
        *slash = 0;
        int r = mkdir_p(target, 0755);
        *slash = '/';
        if (r != 0) return failed(err, errn, "mkdir for %s", target);
        int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644); /* the mount point */
        if (fd < 0 || close(fd) != 0) return failed(err, errn, "creating %s", target);
    }
    if (mount(m->path, target, NULL, MS_BIND, NULL) != 0) return failed(err, errn, "binding %s", m->path);
    if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | flags[m->kind], NULL) != 0)
        return failed(err, errn, "remounting %s", m->path);
    return 0;
}

/* The guest's memory at prefix + ram_dir + "/ram" (docs/vm.md, "Snapshot start"): a tmpfs of the VMM's own mount
 * namespace (nothing reaches the host's; it goes with the VMM), a file of the guest's size in it, the VMM's; a
 * restore's pages are copied in by the relay while QEMU starts (ram_copy, snapshot.c). Charged to the sandbox's
 * memory cgroup, as the relay and its child are in it. A run/mem of the VMM's uid (which owns run/) that is not a directory is refused. */
static int mount_ram(const struct vmm_setup *s, const char *prefix, uid_t uid, gid_t gid, char *err, size_t errn) {
    char dir[4096], file[4200], opts[128];
    struct stat st;
    if ((size_t)snprintf(dir, sizeof dir, "%s%s", prefix, s->ram_dir) >= sizeof dir) {
        errno = ENAMETOOLONG;
        return failed(err, errn, "%s", s->ram_dir);
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return failed(err, errn, "mkdir %s", dir);
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (errno == 0) errno = ENOTDIR;
        return failed(err, errn, "%s", dir);
    }
    snprintf(opts, sizeof opts, "mode=0700,uid=%u,gid=%u,size=%lld,nr_inodes=4", (unsigned)uid, (unsigned)gid,
             s->ram_bytes);
    if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) != 0)
        return failed(err, errn, "mounting the guest's memory on %s", dir);
    snprintf(file, sizeof file, "%s/ram", dir);
    int fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return failed(err, errn, "creating %s", file);
    if (ram_fill(fd, s->ram_bytes, err, errn) != 0) { close(fd); return -1; }
    if (fchown(fd, uid, gid) != 0) return failed(err, errn, "chown %s", file);
    if (close(fd) != 0) return failed(err, errn, "close %s", file);
    return 0;
}

static int enter_jail(const struct vmm_setup *s, char *err, size_t errn) {
    char cwd[4096];
    mode_t mask = umask(022); /* the jail's directories must be searchable by the VMM's uid (the shim's umask is 077) */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return failed(err, errn, "making / private");
    if (mount("tmpfs", s->root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=1m,nr_inodes=4096") != 0)
        return failed(err, errn, "mounting the jail's tmpfs on %s", s->root);
    for (size_t i = 0; i < s->nmounts; i++)
        if (bind_one(s->root, &s->mounts[i], err, errn) != 0) return -1;
    if (s->ram_dir != NULL && mount_ram(s, s->root, s->uid, s->gid, err, errn) != 0) return -1;
    if ((size_t)snprintf(cwd, sizeof cwd, "%s%s", s->root, s->cwd) >= sizeof cwd) {
        errno = ENAMETOOLONG;
        return failed(err, errn, "%s", s->cwd);
    }
    if (mkdir_p(cwd, 0755) != 0) return failed(err, errn, "mkdir %s", cwd);
    /* pivot_root(".", "."): the old root ends up on top of the new one, and is detached at once */
    if (chdir(s->root) != 0) return failed(err, errn, "chdir %s", s->root);
    if (syscall(SYS_pivot_root, ".", ".") != 0) return failed(err, errn, "pivot_root into %s", s->root);
    if (umount2(".", MNT_DETACH) != 0) return failed(err, errn, "detaching the host's root");
    if (chdir("/") != 0) return failed(err, errn, "chdir /");
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        return failed(err, errn, "making the jail's root read-only");
    if (chdir(s->cwd) != 0) return failed(err, errn, "chdir %s in the jail", s->cwd);
    umask(mask); /* what the VMM creates (its sockets) is its own only */
    return 0;
}

static int drop_privileges(uid_t uid, gid_t gid, char *err, size_t errn) {
    /* the bounding set first: dropping from it needs CAP_SETPCAP, which setresuid below takes away */
    for (int c = 0; c < 64; c++) {
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0) continue;
        if (errno == EINVAL) break; /* past the kernel's last capability */
        return failed(err, errn, "dropping capability %d from the bounding set", c);
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        return failed(err, errn, "clearing the ambient capabilities");
    if (setgroups(0, NULL) != 0) return failed(err, errn, "setgroups");
    if (setresgid(gid, gid, gid) != 0) return failed(err, errn, "setresgid %u", (unsigned)gid);
    if (setresuid(uid, uid, uid) != 0) return failed(err, errn, "setresuid %u", (unsigned)uid);
    /* a uid change from 0 cleared permitted and effective; inheritable stays unless cleared here */
    struct cap_header h = { CAP_VERSION_3, 0 };
    struct cap_data d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capset, &h, d) != 0) return failed(err, errn, "capset");
    if (syscall(SYS_capget, &h, d) != 0) return failed(err, errn, "capget");
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0) return failed(err, errn, "getresuid");
    if (d[0].effective | d[0].permitted | d[0].inheritable | d[1].effective | d[1].permitted | d[1].inheritable ||
        ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid) {
        errno = EPERM;
        return failed(err, errn, "privileges still held after dropping them");
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return failed(err, errn, "PR_SET_NO_NEW_PRIVS");
    return 0;
}

int vmm_prepare(const struct vmm_setup *s, char *err, size_t errn) {
    int tap = -1, given[8];
    if (s->netns != NULL) { /* setns, not `ip netns exec`: that remounts /sys */
        int ns = open(s->netns, O_RDONLY | O_CLOEXEC);
        if (ns < 0 || setns(ns, CLONE_NEWNET) != 0)
            return failed(err, errn, "cannot enter the sandbox's network namespace %s", s->netns);
        if (close(ns) != 0) return failed(err, errn, "close");
    }
    if (s->jail_tap != NULL) {
        /* a Firecracker snapshot template's card (docs/vm.md, "On Firecracker"): Firecracker opens its TAP by name, so
         * one is made here, in the template's own new namespace, persistent and the VMM's; it goes with the namespace */
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", s->jail_tap);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        int t = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (t < 0) return failed(err, errn, "/dev/net/tun");
        if (ioctl(t, TUNSETIFF, &ifr) != 0 || ioctl(t, TUNSETOWNER, (unsigned long)s->uid) != 0 ||
            ioctl(t, TUNSETGROUP, (unsigned long)s->gid) != 0 || ioctl(t, TUNSETPERSIST, 1UL) != 0) {
            int e = errno;
            if (close(t) != 0) { /* keep the first error */ }
            errno = e;
            return failed(err, errn, "making the TAP %s", s->jail_tap);
        }
        if (close(t) != 0) return failed(err, errn, "close");
    }
    if (s->tap != NULL) { /* as QEMU's own tap_open would, in the namespace, so the VMM needs no /dev/net/tun */
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", s->tap);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        tap = move_high(open("/dev/net/tun", O_RDWR | O_CLOEXEC));
        if (tap < 0) return failed(err, errn, "/dev/net/tun");
        if (ioctl(tap, TUNSETIFF, &ifr) != 0) return failed(err, errn, "opening the TAP %s", s->tap);
    }
    for (size_t i = 0; i < s->nfds; i++) {
        given[i] = move_high(open(s->fds[i].path, s->fds[i].flags | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW));
        if (given[i] < 0) return failed(err, errn, "%s", s->fds[i].path);
    }
    if (s->root != NULL && enter_jail(s, err, errn) != 0) return -1;
    if (s->root == NULL && s->ram_dir != NULL) { /* unjailed: a mount namespace for that one tmpfs */
        if (unshare(CLONE_NEWNS) != 0) return failed(err, errn, "unshare");
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return failed(err, errn, "making / private");
        if (mount_ram(s, "", 0, 0, err, errn) != 0) return -1;
    }
    if (tap >= 0 && dup2(tap, s->tap_fd) < 0) return failed(err, errn, "dup2");
    for (size_t i = 0; i < s->nfds; i++)
        if (dup2(given[i], s->fds[i].fd) < 0) return failed(err, errn, "dup2");
    if (s->root != NULL && drop_privileges(s->uid, s->gid, err, errn) != 0) return -1;
    /* that uid change cleared the parent-death signal the relay's child set (prctl(2)): set again, or a jailed VMM
     * would outlive a relay killed with SIGKILL (found with the snapshot template's TAP test) */
    if (s->root != NULL && prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return failed(err, errn, "PR_SET_PDEATHSIG");
    if (s->root != NULL && s->alive >= 0) { /* and a relay that died between the two got no signal sent: look */
        struct pollfd p = { s->alive, POLLIN, 0 };
        int ready = poll(&p, 1, 0);
        if (ready != 0) {
            if (ready > 0) errno = ESRCH;
            return failed(err, errn, "the relay is gone");
        }
    }
    if (s->filter != NULL) { /* the last step: from here on only the allowlist, the exec included */
        struct bpf_prog prog = { (unsigned short)s->filter_len, s->filter };
        if (s->root == NULL && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            return failed(err, errn, "PR_SET_NO_NEW_PRIVS");
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
            return failed(err, errn, "installing the seccomp filter");
    }
    return 0;
}
