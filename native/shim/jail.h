/*
 * The VMM's jail (docs/vm.md, "The VMM's jail"): what the relay sets up in the VMM's process between its clone and
 * its exec. The relay reads the files (jail_load) before it clones; the child enters the jail (jail_enter) and execs.
 */
#ifndef KILN_JAIL_H
#define KILN_JAIL_H

#include <stddef.h>
#include <sys/types.h>

/* How a host path is bound into the jail, at the same path inside. */
enum jail_kind {
    JAIL_RO,   /* read-only, noexec: kernel, initramfs, firmware */
    JAIL_EXEC, /* read-only, executable: the VMM's binary, its loader and libraries */
    JAIL_RW,   /* writable, noexec: the directory of the VMM's sockets (owned by its uid) */
    JAIL_DEV   /* read-only mount of a device node, noexec: /dev/null, /dev/urandom, /dev/kvm */
};

struct jail_mount { enum jail_kind kind; char *path; };

/* A file the VMM gets as an open descriptor (opened by the relay, as root, before the jail): fd, flags, path. */
struct jail_fd { int fd, flags; const char *path; };

struct vmm_setup {
    const char *netns;               /* --netns: the network namespace to join; NULL for none */
    const char *tap;                 /* --tap N:NAME: the TAP opened in that namespace, given as fd tap_fd */
    int tap_fd;
    struct jail_fd fds[8];           /* --fd N:ro|rw:PATH */
    size_t nfds;
    /* the jail: root NULL for none */
    const char *root;                /* --jail DIR: an empty host directory; the jail's tmpfs is mounted on it */
    const char *cwd;                 /* the VMM's working directory, inside the jail too (the relay's VM directory) */
    uid_t uid;                       /* --jail-uid, --jail-gid */
    gid_t gid;
    struct jail_mount *mounts;       /* --jail-mounts FILE: lines "KIND<TAB>PATH" (ro, exec, rw, dev) */
    size_t nmounts;
    int new_net;                     /* --jail-new-netns: an empty network namespace (a VM without a card) */
    const char *jail_tap;            /* --jail-tap NAME: a TAP made in that new namespace, the VMM's (a template's card) */
    unsigned char *filter;           /* --seccomp FILE: a raw struct sock_filter array (x86-64), installed last */
    size_t filter_len;               /* in instructions */
    /* --ram-file: the guest's memory is a file on a tmpfs of the VMM's own mount namespace, mounted at ram_dir
     * (DIR/run/mem) and gone with it, made empty and sized here; the relay writes a snapshot's pages into it through
     * /proc/VMM/root while QEMU starts, or reads a template's back. QEMU's memory-backend-file maps ram_dir/ram. */
    const char *ram_dir;             /* NULL: none */
    long long ram_bytes;
    int alive;                       /* jailed: the relay's pipe, readable (EOF) once the relay is gone; else -1 */
};

#define JAIL_FD_MAX 100              /* descriptors given to the VMM are below this; the child's own sit above it */

/* fd moved to JAIL_FD_MAX or above (out of the way of the descriptors the VMM is given), close-on-exec; the old one
 * closed. -1 on failure. */
int move_high(int fd);

/* Reads the mount list and the seccomp filter; 0, or -1 with one line in err. */
int jail_load(struct vmm_setup *s, const char *mounts_file, const char *seccomp_file, char *err, size_t errn);

/*
 * In the VMM's freshly cloned process (new mount, pid, ipc and uts namespaces when jailed): joins the network
 * namespace, opens the TAP and the files it is given, enters the jail, drops every privilege, installs the filter.
 * 0 when the caller may exec; -1 with one line in err (the caller reports it and exits 125).
 */
int vmm_prepare(const struct vmm_setup *s, char *err, size_t errn);

#endif
