/*
 * The VM relay (docs/vm.md). kilnd runs a VM as a normal shim whose CMD is this same binary in a relay mode:
 *
 *   kiln-shim --relay-vm --dir VMDIR --spec FILE [--hello-timeout SECS] [--netns PATH] [--cgroup DIR]
 *             [--start-gate FILE] -- qemu-system-x86_64 ARGS...
 *   kiln-shim --relay-vm --dir VMDIR --spec FILE [...] --api-sock SOCK --api-requests FILE --listen SOCK
 *             --console-stdout -- firecracker ARGS...
 *
 * It starts the VMM, speaks the guest protocol (docs/guest-protocol.md) over the VMM's virtio-serial socket
 * VMDIR/ctl.sock, maps the guest's main process (stream 0) onto its own stdin/stdout/stderr (so the outer shim logs
 * and attaches it as any command), forwards the signals it receives to that process, serves execs on VMDIR/exec.sock
 * (each one a --relay-exec, relay_exec.c), and exits as the guest's process exited once the VMM is gone.
 * With --netns the VMM (only it: the relay stays where it is) joins that network namespace before it starts, so it
 * opens the sandbox's TAP device there (docs/networking.md).
 *
 * For Firecracker (docs/vm.md) three things differ, all before the first frame: --listen makes the control channel
 * a socket the relay listens on (Firecracker's hybrid vsock connects the guest's port 1024 to it) instead of one
 * it connects to; --api-sock/--api-requests send the VMM's boot sequence (firecracker.c), NUL-terminated HTTP
 * requests written by kilnd, each on its own connection; --console-stdout puts the VMM's stdout (the guest's serial
 * console) in boot.log. From the first frame on, both VMMs are relayed by the same code. A Firecracker snapshot's
 * template (--save-requests FILE) gets no START: once the guest said HELLO, FILE's requests (pause, snapshot create)
 * are sent the same way and the VMM is killed (docs/vm.md, "On Firecracker").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jail.h"
#include "relay.h"

#define G_POWEROFF_MS 10000            /* after the guest reported the exit: time for the VMM to stop */
#define G_ERROR_KEEP  300              /* bytes of the guest's ERROR text kept for the report */

struct gexec { struct gconn c; struct buf out; int stream, done; };

static int g_ctl = -1, g_ctl_listen = -1, g_exec_listen = -1, g_stdin_open = 1;
static struct gconn g_ctlc;
static struct buf g_ctl_out;
static struct gexec *g_execs[G_MAX_EXECS];
static pid_t g_vmm = -1;
static int g_vmm_status = -1, g_exit_code = -1; /* g_exit_code: 0..255 once known */
static long long g_t0;

static void timings(const char *phase, long long *slot) {
    (void)phase;
    *slot = now_ms() - g_t0;
}

static long long g_ms_connected = -1, g_ms_hello = -1, g_ms_started = -1, g_ms_exit = -1, g_ms_stopped = -1;
static long long g_ms_vmm_exec = -1, g_ms_jail = -1; /* when the VMM exec'd; how long its jail took (clone to exec) */
static long long g_ms_loaded = -1; /* a snapshot's state loaded (QEMU runs) */
static long long g_vmm_cpu_ms = -1; /* the VMM's CPU time (user + system) once reaped: under TCG, the guest's work */
static long long g_ms_ram = -1;    /* a snapshot's memory copied into the VMM's (while QEMU starts) */
static long long g_guest_uptime = -1;

static void write_timings(void) {
    char text[500];
    snprintf(text, sizeof text, "{\"vmmExecMs\":%lld,\"jailMs\":%lld,\"vmmSocketMs\":%lld,\"helloMs\":%lld,"
             "\"guestUptimeAtHelloMs\":%lld,\"startedMs\":%lld,\"exitMs\":%lld,\"stoppedMs\":%lld,"
             "\"loadedMs\":%lld,\"vmmCpuMs\":%lld,\"ramMs\":%lld}\n",
             g_ms_vmm_exec, g_ms_jail, g_ms_connected, g_ms_hello, g_guest_uptime, g_ms_started, g_ms_exit,
             g_ms_stopped, g_ms_loaded, g_vmm_cpu_ms, g_ms_ram);
    if (write_atomic("timings.json", text) != 0) note("writing timings.json: %s", strerror(errno));
}

static struct gexec *exec_of(int stream) {
    for (int i = 0; i < G_MAX_EXECS; i++)
        if (g_execs[i] && g_execs[i]->stream == stream) return g_execs[i];
    return NULL;
}

static int g_hello_seen, g_main_ended; /* g_main_ended: the guest's EXIT or ERROR for stream 0 was accepted */
static int g_guest_bye; /* 1: the guest said BYE after ours (synced, powering off); 2: the VMM was ended for it */
/* START has volatile=1 (a --rm VM, no shares): its writable disk is deleted with the sandbox, so nothing the guest
 * could still flush matters and its EXIT ends the VMM at once, without the BYE round trip through the guest */
static int g_volatile;
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
    case T_HELLO: {
        long long uptime = -1;
        if (stream != 0 || hello_parse(p, n, &uptime) != 0) return -1;
        if (g_hello_seen) return 0; /* a second HELLO says nothing new */
        g_hello_seen = 1;
        g_guest_uptime = uptime;
        timings("hello", &g_ms_hello);
        return 0;
    }
    case T_ERROR: /* may come before HELLO: the guest refuses the host's version */
        if (stream != 0) return -1;
        break;
    case T_STDOUT: case T_STDERR:
        if (!g_hello_seen) return -1;
        break;
    case T_EXIT:
        if (!g_hello_seen || exit_parse(p, n, &code, &sig) != 0) return -1;
        break;
    case T_STARTED:
        if (!g_hello_seen || dec_parse(p, n, 0x7fffffff, &pid) != 0 || pid == 0) return -1;
        break;
    case T_BYE: /* the guest's answer to ours: it has synced its disks and powers off (docs/guest-protocol.md) */
        if (stream != 0 || n != 0 || !g_main_ended) return -1;
        if (!g_guest_bye) g_guest_bye = 1;
        return 0;
    case T_START: case T_EXEC: case T_STDIN: case T_STDIN_CLOSE: case T_SIGNAL: case T_RESIZE:
        return -1; /* the host's frames, never the guest's */
    default:
        return 0;
    }
    if (stream == 0) {
        if (g_main_ended) return 0;
        switch (type) {
        case T_STDOUT: gqueue_put(&g_out1, p, n, "", 0); break;
        case T_STDERR: gqueue_put(g_tty ? &g_out1 : &g_out2, p, n, "", 0); break;
        case T_STARTED:
            if (g_ms_started < 0) { timings("started", &g_ms_started); write_timings(); }
            break;
        case T_EXIT: case T_ERROR:
            g_main_ended = 1;
            if (type == T_ERROR) {
                g_error_len = n < sizeof g_error ? n : sizeof g_error;
                memcpy(g_error, p, g_error_len);
            } else if (g_exit_code < 0) { /* else a stop during the boot already decided the status */
                g_exit_code = code;
                timings("exit", &g_ms_exit);
            }
            gframe(&g_ctl_out, T_BYE, 0, "", 0);
            if (g_volatile && !g_guest_bye) g_guest_bye = 1; /* ended below as if it had answered */
            break;
        default: break;
        }
        return 0;
    }
    struct gexec *x = exec_of(stream);
    if (x == NULL || x->done) return 0; /* an exec whose client is gone, or a stream that is not (or no longer) one */
    switch (type) {
    case T_STDOUT: gframe(&x->out, F_STDOUT, 0, p, n); break;
    case T_STDERR: gframe(&x->out, F_STDERR, 0, p, n); break;
    case T_EXIT: {
        char text[16];
        int k = snprintf(text, sizeof text, "%d %d", code, sig); /* the checked values, not the guest's bytes */
        gframe(&x->out, F_EXIT, 0, text, (size_t)k);
        x->done = 1;
        break;
    }
    case T_ERROR: return -1; /* ERROR is stream 0's */
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
        gframe(&g_ctl_out, T_EXEC, x->stream, p, n);
        return 0;
    }
    switch (type) {
    case F_STDIN: gframe(&g_ctl_out, T_STDIN, x->stream, p, n); break;
    case F_CLOSE_STDIN: gframe(&g_ctl_out, T_STDIN_CLOSE, x->stream, p, n); break;
    case F_RESIZE: gframe(&g_ctl_out, T_RESIZE, x->stream, p, n); break;
    case F_SIGNAL: gframe(&g_ctl_out, T_SIGNAL, x->stream, p, n); break;
    default: break;
    }
    return 0;
}

static void exec_drop(int i) {
    struct gexec *x = g_execs[i];
    if (x->stream > 0 && !x->done && g_ctl >= 0) gframe_text(&g_ctl_out, T_SIGNAL, x->stream, "9");
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

static struct vmm_setup g_setup; /* what the VMM's process does before its exec (jail.c) */

/* The VMM's process, between its clone and its exec: a failure is one line, on vmm.log and through `report` to the
 * relay (which closes at the exec: EOF there means the VMM runs). */
__attribute__((noreturn)) static void vmm_child(char **argv, int out, int log, int report, int alive, pid_t parent) {
    static char *const no_env[] = { NULL };
    char err[700], line[800];
    sigset_t none;
    /* the relay's pipes out of the way first: the descriptors given to the VMM (3...) replace whatever is there */
    if ((report = move_high(report)) < 0 || (alive >= 0 && (alive = move_high(alive)) < 0)) _exit(125);
    g_setup.alive = alive; /* looked at again after the jail's uid change (jail.c) */
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nul < 0 || dup2(nul, 0) < 0 || dup2(out, 1) < 0 || dup2(log, 2) < 0) _exit(125);
    /* the VMM dies with its relay, so a killed sandbox never leaves a VM behind; had the relay died before this,
     * getppid() would tell, but not in a pid namespace of its own (it says 0 there): the relay's pipe end does */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) _exit(125);
    if (alive >= 0) {
        struct pollfd p = { alive, POLLIN, 0 };
        if (poll(&p, 1, 0) != 0) _exit(125);
    } else if (getppid() != parent) _exit(125);
    if (setpgid(0, 0) != 0) _exit(125); /* signals for the workload are not for the VMM */
    if (sigemptyset(&none) != 0 || sigprocmask(SIG_SETMASK, &none, NULL) != 0) _exit(125);
    int code = 125;
    if (vmm_prepare(&g_setup, err, sizeof err) == 0) {
        if (g_setup.root != NULL) execve(argv[0], argv, no_env); /* nothing of kilnd's environment in the jail */
        else execvp(argv[0], argv);
        code = errno == ENOENT ? 127 : 126;
        snprintf(err, sizeof err, "%s: %s", argv[0], strerror(errno));
    }
    int n = snprintf(line, sizeof line, "kiln: cannot start the VMM: %s\n", err);
    if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
    if (write_all(2, line, (size_t)n) != 0 || write_all(report, line, (size_t)n) != 0) { /* the exit code tells */ }
    _exit(code);
}

/* Starts the VMM: its own process group, its own namespaces when jailed (clone: the VMM is PID 1 of its pid
 * namespace and still the relay's child, so the relay waits for it and kills it as any child; only SIGKILL and the
 * signals QEMU handles reach a namespace's init from outside, which is all the relay and kilnd send). Waits (bounded)
 * until it has exec'd or said why not. */
static void start_vmm(char **argv, int console_stdout) {
    char text[32];
    int log = open("vmm.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log < 0) { say_err("kiln: vmm.log: %s", strerror(errno)); return; }
    /* a VMM whose stdout is the guest's console: boot.log holds this boot only, as QEMU's -serial file: did */
    int out = console_stdout ? open("boot.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : log;
    if (out < 0) { say_err("kiln: boot.log: %s", strerror(errno)); xclose(log); return; }
    int report[2], alive[2] = { -1, -1 };
    if (pipe2(report, O_CLOEXEC) != 0 || (g_setup.root != NULL && pipe2(alive, O_CLOEXEC) != 0)) {
        say_err("kiln: pipe: %s", strerror(errno));
        return;
    }
    pid_t parent = getpid();
    long long forked = now_ms();
    if (g_setup.root != NULL) /* fork's semantics with new namespaces: the raw call, as the libc wrapper wants a stack */
        g_vmm = (pid_t)syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD |
                               (g_setup.new_net ? CLONE_NEWNET : 0), 0, 0, 0, 0);
    else g_vmm = fork();
    if (g_vmm < 0) { say_err("kiln: %s: %s", g_setup.root ? "clone" : "fork", strerror(errno)); return; }
    if (g_vmm == 0) {
        if (close(report[0]) != 0 || (alive[1] >= 0 && close(alive[1]) != 0)) _exit(125);
        vmm_child(argv, out, log, report[1], alive[0], parent);
    }
    xclose(report[1]);
    if (alive[0] >= 0) xclose(alive[0]); /* alive[1] stays open as long as the relay lives */
    if (out != log) xclose(out);
    xclose(log);
    snprintf(text, sizeof text, "%d\n", (int)g_vmm);
    if (write_atomic("vmm.pid", text) != 0) note("writing vmm.pid: %s", strerror(errno));
    char why[800];
    size_t n = 0;
    long long deadline = forked + G_CONNECT_MS;
    for (;;) {
        struct pollfd p = { report[0], POLLIN, 0 };
        long long left = deadline - now_ms();
        int r = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { /* a jail that takes this long is stuck (a mount that hangs): the VM is given up */
            say_err("kiln: the VMM did not start within %d s", G_CONNECT_MS / 1000);
            break;
        }
        ssize_t k = read(report[0], why + n, sizeof why - 1 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k > 0 && (n += (size_t)k) < sizeof why - 1) continue;
        if (n == 0 && k == 0) { /* closed by the exec */
            g_ms_vmm_exec = now_ms() - g_t0;
            if (g_setup.root != NULL) g_ms_jail = now_ms() - forked;
            xclose(report[0]);
            return;
        }
        while (n > 0 && why[n - 1] == '\n') n--;
        why[n] = 0;
        say_err("%s", n ? why : "kiln: cannot start the VMM");
        break;
    }
    xclose(report[0]);
    if (g_exit_code < 0) g_exit_code = 125;
    if (kill(g_vmm, SIGKILL) != 0 && errno != ESRCH) note("kill vmm: %s", strerror(errno));
}

static void vmm_cpu(const struct rusage *ru) {
    g_vmm_cpu_ms = ((long long)ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
                   ((long long)ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000;
}

static void reap_vmm(int sig_fd) {
    struct signalfd_siginfo si;
    while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        int s = (int)si.ssi_signo;
        if (s == SIGCHLD || s == SIGPIPE || s == SIGURG) continue;
        if (s == SIGWINCH && g_tty) { send_winsize(&g_ctl_out, T_RESIZE, 0); continue; }
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
        gframe_text(&g_ctl_out, T_SIGNAL, 0, text);
    }
    for (;;) {
        int st;
        struct rusage ru;
        pid_t p = wait4(-1, &st, WNOHANG, &ru);
        if (p < 0 && errno == EINTR) continue;
        if (p <= 0) return;
        if (p == g_vmm) { g_vmm_status = st; g_vmm = -1; timings("stopped", &g_ms_stopped); vmm_cpu(&ru); }
    }
}

/* The VMM has exited (reaped here, so its status is kept for the end); for waits before the main loop. */
static int vmm_gone(void) {
    int st;
    if (g_vmm <= 0) return 1;
    struct rusage ru;
    pid_t p = wait4(g_vmm, &st, WNOHANG, &ru);
    if (p != g_vmm) return 0;
    vmm_cpu(&ru);
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
    gframe(&g_ctl_out, T_HELLO, 0, "version=1", 10);
}
/*
 * --resume: the VM is a checkpoint's (docs/checkpoint.md), restored stopped with -incoming: its kiln-init is past
 * START, its workload runs, its channel's state is the checkpointed one. The relay is on the channel now, so the guest
 * is run (QMP cont) and taken as greeted and started: no START is sent (the guest would ignore it, as it ignores the
 * HELLO control_open sent), and what it writes from here on is relayed as in the run that was checkpointed.
 */
static void resume_guest(const char *qmp_sock, const char *ctl_sock, int *started) {
    char why[400];
    g_hello_seen = 1;
    *started = 1;
    timings("hello", &g_ms_hello);
    timings("started", &g_ms_started);
    if (vm_cont(qmp_sock, 120000, 1, ctl_sock, why, sizeof why) != 0) {
        say_err("kiln: cannot run the restored VM: %s", why);
        g_exit_code = 125;
        if (g_vmm > 0 && kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
    }
}

#define RELAY_VM_USAGE "--relay-vm --dir DIR --spec FILE [--hello-timeout SECS] [--netns PATH] [--listen SOCK] " \
                       "[--ctl-sock SOCK] [--api-sock SOCK --api-requests FILE] [--console-stdout] [--cgroup DIR]... " \
                       "[--save-to FILE --qmp-sock SOCK] [--save-requests FILE] [--resume (--qmp-sock SOCK | --api-sock SOCK --listen SOCK)] " \
                       "[--start-gate FILE] " \
                       "[--ram-file FILE --ram-mib N [--incoming FD --qmp-sock SOCK]] " \
                       "[--tap FD:NAME] [--fd FD:ro|rw:PATH]... [--jail DIR --jail-uid UID --jail-gid GID " \
                       "--jail-mounts FILE [--seccomp FILE] [--jail-new-netns [--jail-tap NAME]]] -- VMM ARGS..."

/* Moves this process into the cgroup DIR (kilnd's per-sandbox ones: memory, pids) before the VMM is started, so the
 * relay and the VMM are both held by its limits. */
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

/* "N" for a descriptor given to the VMM: 3..JAIL_FD_MAX-1 (0-2 are its stdio); the rest of text after it in *rest. */
static int fd_arg(const char *text, const char **rest) {
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != ':' || n < 3 || n >= JAIL_FD_MAX) return -1;
    *rest = end + 1;
    return (int)n;
}

/* A uid or gid for the jail: decimal, not root's, not -1. */
/*
 * START as the guest gets it: the spec's records, then what must be new at every start, never the spec file's, so
 * that VMs restored from one snapshot (docs/vm.md, "Snapshot start") share nothing: seed= 64 bytes of the host's
 * randomness (kiln-init credits them to the guest's RNG and reseeds it), time= the host's clock now (the guest's
 * stopped with its snapshot). -1 when the host cannot give randomness: no VM starts without it.
 */
static int start_payload(const struct buf *spec, struct buf *out) {
    unsigned char seed[64];
    char rec[300];
    struct timespec now;
    size_t got = 0;
    while (got < sizeof seed) {
        ssize_t r = getrandom(seed + got, sizeof seed - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return -1;
    int k = snprintf(rec, sizeof rec, "seed=");
    for (size_t i = 0; i < sizeof seed; i++) k += snprintf(rec + k, sizeof rec - (size_t)k, "%02x", seed[i]);
    k += snprintf(rec + k, sizeof rec - (size_t)k, "%ctime=%lld.%09ld%c", 0, (long long)now.tv_sec, now.tv_nsec, 0);
    if (spec->len + (size_t)k > MAX_PAYLOAD) { errno = E2BIG; return -1; }
    gbuf_put(out, spec->p, spec->len);
    gbuf_put(out, rec, (size_t)k);
    return 0;
}

static int id_arg(const char *text, unsigned *out) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != 0 || v == 0 || v >= 0xffffffffUL || text[0] == '-') return -1;
    *out = (unsigned)v;
    return 0;
}

/* A template's memory, saved and stopped, from its file on the VMM's tmpfs (seen through /proc/VMM/root, the VMM's
 * own root) into the snapshot's ram file; then the template has done its work and is killed. -1 with err. */
static int template_ram(const char *dir, const char *to, char *err, size_t errn) {
    char path[4300];
    snprintf(path, sizeof path, "/proc/%d/root%s/run/mem/ram", (int)g_vmm, dir);
    int m = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (m < 0) { snprintf(err, errn, "%.300s: %s", path, strerror(errno)); return -1; }
    int rc = ram_save(m, to, err, errn);
    xclose(m);
    if (rc == 0 && g_vmm > 0 && kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
    return rc;
}

int relay_vm(int argc, char **argv) {
    const char *dir = NULL, *spec = NULL, *listen_path = NULL, *api_sock = NULL, *api_requests = NULL;
    /* --start-gate FILE: START waits until FILE exists (containerd's Create boots the VM, its Start makes the file) */
    const char *start_gate = NULL;
    const char *cgroups[4], *ctl_sock = "ctl.sock", *jail_mounts = NULL, *seccomp = NULL, *rest;
    const char *save_to = NULL, *qmp_sock = NULL; /* the template boot of a snapshot (snapshot.c) */
    const char *save_requests = NULL; /* ... on Firecracker: the API requests that save it, sent after HELLO */
    const char *ram_file = NULL; /* the guest's memory: a snapshot's ram file, or where a template's goes (--save-to) */
    long hello_timeout = 60, ram_mib = 0;
    int i, console_stdout = 0, bad = 0, resume = 0, incoming = -1;
    size_t ncgroups = 0;
    unsigned uid = 0, gid = 0;
    struct vmm_setup *v = &g_setup;
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) { i++; break; }
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--spec") == 0 && i + 1 < argc) spec = argv[++i];
        else if (strcmp(argv[i], "--hello-timeout") == 0 && i + 1 < argc) hello_timeout = atol(argv[++i]);
        else if (strcmp(argv[i], "--netns") == 0 && i + 1 < argc) v->netns = argv[++i];
        else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) listen_path = argv[++i];
        else if (strcmp(argv[i], "--ctl-sock") == 0 && i + 1 < argc) ctl_sock = argv[++i];
        else if (strcmp(argv[i], "--api-sock") == 0 && i + 1 < argc) api_sock = argv[++i];
        else if (strcmp(argv[i], "--api-requests") == 0 && i + 1 < argc) api_requests = argv[++i];
        else if (strcmp(argv[i], "--console-stdout") == 0) console_stdout = 1;
        else if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc && ncgroups < 4) cgroups[ncgroups++] = argv[++i];
        else if (strcmp(argv[i], "--tap") == 0 && i + 1 < argc) {
            rest = "";
            bad |= (v->tap_fd = fd_arg(argv[++i], &rest)) < 0 || rest[0] == 0 || strlen(rest) >= 16; /* IFNAMSIZ */
            v->tap = rest;
        } else if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc && v->nfds < 8) {
            struct jail_fd *f = &v->fds[v->nfds++];
            rest = "";
            bad |= (f->fd = fd_arg(argv[++i], &rest)) < 0;
            if (strncmp(rest, "ro:", 3) == 0) f->flags = O_RDONLY;
            else if (strncmp(rest, "rw:", 3) == 0) f->flags = O_RDWR;
            else bad = 1;
            if (!bad && rest[3] == 0) bad = 1; /* a path is needed */
            f->path = bad ? "" : rest + 3;
        }
        else if (strcmp(argv[i], "--jail") == 0 && i + 1 < argc) v->root = argv[++i];
        else if (strcmp(argv[i], "--jail-new-netns") == 0) v->new_net = 1;
        else if (strcmp(argv[i], "--jail-tap") == 0 && i + 1 < argc) v->jail_tap = argv[++i];
        else if (strcmp(argv[i], "--jail-uid") == 0 && i + 1 < argc) bad |= id_arg(argv[++i], &uid) != 0;
        else if (strcmp(argv[i], "--jail-gid") == 0 && i + 1 < argc) bad |= id_arg(argv[++i], &gid) != 0;
        else if (strcmp(argv[i], "--jail-mounts") == 0 && i + 1 < argc) jail_mounts = argv[++i];
        else if (strcmp(argv[i], "--seccomp") == 0 && i + 1 < argc) seccomp = argv[++i];
        else if (strcmp(argv[i], "--save-to") == 0 && i + 1 < argc) save_to = argv[++i];
        else if (strcmp(argv[i], "--qmp-sock") == 0 && i + 1 < argc) qmp_sock = argv[++i];
        else if (strcmp(argv[i], "--save-requests") == 0 && i + 1 < argc) save_requests = argv[++i];
        else if (strcmp(argv[i], "--start-gate") == 0 && i + 1 < argc) start_gate = argv[++i];
        else if (strcmp(argv[i], "--resume") == 0) resume = 1;
        else if (strcmp(argv[i], "--ram-file") == 0 && i + 1 < argc) ram_file = argv[++i];
        else if (strcmp(argv[i], "--ram-mib") == 0 && i + 1 < argc) ram_mib = atol(argv[++i]);
        else if (strcmp(argv[i], "--incoming") == 0 && i + 1 < argc) { /* the state's descriptor (an --fd) */
            incoming = atoi(argv[++i]);
            bad |= incoming < 3 || incoming >= JAIL_FD_MAX;
        }
        else return usage(RELAY_VM_USAGE);
    }
    for (size_t a = 0; a < v->nfds; a++) /* every descriptor given once */
        for (size_t b = 0; b < a; b++) bad |= v->fds[a].fd == v->fds[b].fd;
    for (size_t a = 0; a < v->nfds && v->tap != NULL; a++) bad |= v->fds[a].fd == v->tap_fd;
    if (v->tap != NULL && v->netns == NULL) bad = 1; /* the TAP lives in the sandbox's namespace */
    if (v->root != NULL && (dir == NULL || uid == 0 || gid == 0 || jail_mounts == NULL || v->root[0] != '/' ||
                            dir[0] != '/'))
        bad = 1; /* a jail is never root's, and is told what it holds */
    if (v->root == NULL && (uid || gid || jail_mounts || seccomp || v->new_net)) bad = 1;
    if (v->new_net && v->netns != NULL) bad = 1; /* a namespace of its own, or the sandbox's */
    if (v->jail_tap != NULL && (!v->new_net || v->jail_tap[0] == 0 || strlen(v->jail_tap) >= 16)) bad = 1; /* IFNAMSIZ */
    if (bad || dir == NULL || spec == NULL || i >= argc || hello_timeout <= 0 ||
        (api_sock == NULL) != (api_requests == NULL) ||
        (save_requests != NULL && (api_sock == NULL || listen_path == NULL || save_to != NULL || resume)) ||
        (save_to == NULL && !(resume && api_sock == NULL) && incoming < 0) != (qmp_sock == NULL) ||
        (resume && (save_to != NULL || (listen_path != NULL) != (api_sock != NULL) || incoming >= 0)) ||
        (incoming >= 0 && (save_to != NULL || ram_file == NULL)) || (ram_file == NULL) != (ram_mib <= 0) ||
        ram_mib > (1L << 24))
        return usage(RELAY_VM_USAGE);
    g_t0 = now_ms();
    for (size_t k = 0; k < ncgroups; k++) {
        if (join_cgroup(cgroups[k]) != 0) {
            fprintf(stderr, "kiln: cannot join the sandbox's cgroup %s: %s\n", cgroups[k], strerror(errno));
            return 125;
        }
    }
    if (v->root != NULL) {
        char err[700];
        v->uid = uid;
        v->gid = gid;
        v->cwd = dir;
        if (jail_load(v, jail_mounts, seccomp, err, sizeof err) != 0) {
            fprintf(stderr, "kiln: the VMM's jail: %s\n", err);
            return 125;
        }
    }
    struct buf start = { 0 }, api = { 0 }, save_api = { 0 };
    if (read_file(spec, &start) != 0) { fprintf(stderr, "kiln: %s: %s\n", spec, strerror(errno)); return 125; }
    for (size_t i = 0; i < start.len;) { /* NUL-separated key=value records (GuestSpec) */
        const char *end = memchr(start.p + i, 0, start.len - i);
        size_t n = end != NULL ? (size_t)(end - (start.p + i)) : start.len - i;
        if (n == 10 && memcmp(start.p + i, "volatile=1", 10) == 0) g_volatile = 1;
        i += n + 1;
    }
    if (chdir(dir) != 0) { fprintf(stderr, "kiln: %s: %s\n", dir, strerror(errno)); return 125; }
    if (ram_file != NULL) { /* the VMM's child makes it (jail.c), after the cgroups: the guest's memory is the sandbox's */
        char target[4200];
        snprintf(target, sizeof target, "%s/run/mem", dir);
        v->ram_dir = strdup(target);
        if (v->ram_dir == NULL) { fprintf(stderr, "kiln: out of memory\n"); return 125; }
        v->ram_bytes = (long long)ram_mib << 20;
    }
    int ram_src = -1; /* a snapshot's memory, checked and opened before anything starts; copied in while QEMU starts */
    if (ram_file != NULL && save_to == NULL) {
        char err[700];
        if (ram_open(ram_file, v->ram_bytes, &ram_src, err, sizeof err) != 0) {
            fprintf(stderr, "kiln: cannot start the VMM: %s\n", err);
            return 125;
        }
    }
    if (api_requests != NULL && read_file(api_requests, &api) != 0) {
        fprintf(stderr, "kiln: %s: %s\n", api_requests, strerror(errno));
        return 125;
    }
    if (save_requests != NULL && read_file(save_requests, &save_api) != 0) {
        fprintf(stderr, "kiln: %s: %s\n", save_requests, strerror(errno));
        return 125;
    }
    /* listening before the VMM starts: the guest can never connect before someone is there (docs/vm.md) */
    if (listen_path != NULL && (g_ctl_listen = g_listen_unix(listen_path)) < 0) {
        fprintf(stderr, "kiln: cannot listen on %s/%s: %s\n", dir, listen_path, strerror(errno));
        return 125;
    }
    /* a jailed VMM (Firecracker's vsock) connects as its own uid: the socket (0600) is made its */
    if (g_ctl_listen >= 0 && v->root != NULL && chown(listen_path, (uid_t)uid, (gid_t)gid) != 0) {
        fprintf(stderr, "kiln: cannot give %s/%s to the VMM's uid: %s\n", dir, listen_path, strerror(errno));
        return 125;
    }
    if (api_sock != NULL && unlink(api_sock) != 0 && errno != ENOENT) note("removing %s: %s", api_sock, strerror(errno));
    /* --save-to: opened as root here, given to QEMU over its monitor; 0600 like every file of kiln's state */
    int save_fd = -1;
    pid_t parent = getppid();
    if (save_to != NULL && (save_fd = open(save_to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
        fprintf(stderr, "kiln: %s: %s\n", save_to, strerror(errno));
        return 125;
    }
    int sig_fd = all_signals_fd();
    if (sig_fd < 0) { fprintf(stderr, "kiln: signalfd: %s\n", strerror(errno)); return 125; }
    g_tty = isatty(0);
    if (g_tty) raw_mode(0);
    if (set_nonblock(0) != 0 || set_nonblock(1) != 0 || (!g_tty && set_nonblock(2) != 0)) note("O_NONBLOCK: %s", strerror(errno));
    if (unlink(ctl_sock) != 0 && errno != ENOENT) note("removing %s: %s", ctl_sock, strerror(errno));
    if ((g_exec_listen = g_listen_unix("exec.sock")) < 0) say_err("kiln: exec.sock: %s", strerror(errno));
    start_vmm(argv + i, console_stdout);
    if (ram_src >= 0) {
        char path[4300], why[700];
        snprintf(path, sizeof path, "/proc/%d/root%s/run/mem/ram", (int)g_vmm, dir);
        if (g_vmm > 0 && g_exit_code < 0 && ram_copy(ram_src, path, v->ram_bytes, why, sizeof why) != 0 &&
            !vmm_gone()) { /* (a VMM that exited at once is reported as such, with its vmm.log, below) */
            say_err("kiln: cannot start the VMM: %s", why);
            g_exit_code = 125;
            if (kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
        }
        xclose(ram_src);
        timings("ram", &g_ms_ram);
    }
    if (api_sock != NULL && g_vmm > 0 && g_exit_code < 0 && send_api(api_sock, &api, G_API_MS, vmm_gone) != 0) {
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
        if (resume == 1 && qmp_sock != NULL && g_vmm > 0 && g_exit_code < 0) { /* a checkpoint's VM: on the channel once it has loaded */
            char why[400];
            resume = 2;
            if (vm_cont(qmp_sock, 120000, 0, NULL, why, sizeof why) != 0) {
                say_err("kiln: the VM did not load its checkpoint: %s", why);
                g_exit_code = 125;
                if (kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
            }
        }
        if (incoming >= 0 && g_vmm > 0 && g_exit_code < 0) { /* a snapshot's VM: loaded before the channel */
            char why[400];
            if (vm_incoming(qmp_sock, incoming, G_CONNECT_MS, why, sizeof why) != 0) {
                say_err("kiln: the VM did not restore its snapshot: %s", why);
                g_exit_code = 125;
                if (kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
            }
            incoming = -1;
            timings("loaded", &g_ms_loaded);
        }
        if (g_ctl < 0 && !ctl_eof && g_vmm > 0 && g_ctl_listen < 0) { /* the VMM creates its socket soon after start */
            int fd = g_connect_unix(ctl_sock);
            if (fd >= 0) {
                control_open(fd);
                if (resume) resume_guest(qmp_sock, ctl_sock, &started);
            } else if (now > connect_deadline) {
                say_err("kiln: the VMM did not open its control socket within %d s (see %s/vmm.log)",
                        G_CONNECT_MS / 1000, dir);
                ctl_eof = 1;
                if (kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
            } else timeout = 10;
        }
        if ((save_fd >= 0 || save_api.p != NULL) && g_exit_code < 0 && getppid() != parent) { /* kilnd died: its template goes too */
            say_err("kiln: the VM's snapshot was given up: kilnd is gone");
            g_exit_code = 125;
            if (g_vmm > 0 && kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
        }
        if (save_fd >= 0 && g_hello_seen && g_exit_code < 0 && !g_main_ended && g_vmm > 0) {
            /* the template: kiln-init answered and now waits for START; nothing more is sent to it, the VM is
             * stopped and its state written as it is (docs/vm.md, "Snapshot start") */
            char why[400];
            if (g_ctl_out.len && gbuf_flush(&g_ctl_out, g_ctl) != 0) note("flushing the control socket");
            if (snapshot_save(qmp_sock, save_fd, (int)(hello_timeout * 1000), ram_file == NULL, ram_file != NULL, why,
                              sizeof why) == 0 && (ram_file == NULL || template_ram(dir, ram_file, why, sizeof why) == 0)) {
                g_exit_code = 0;
            } else {
                say_err("kiln: cannot save the VM's snapshot: %s", why);
                g_exit_code = 125;
                if (g_vmm > 0 && kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
            }
            if (fsync(save_fd) != 0 && g_exit_code == 0) {
                say_err("kiln: cannot save the VM's snapshot: fsync %s: %s", save_to, strerror(errno));
                g_exit_code = 125;
            }
            xclose(save_fd);
            save_fd = -2; /* done: no second attempt */
        }
        if (save_api.p != NULL && g_hello_seen && g_exit_code < 0 && !g_main_ended && g_vmm > 0) {
            /* Firecracker's template: kiln-init answered and waits for START; the VM is paused and snapshotted into
             * the VMM's run/ by its API (kilnd takes the files out of the jail, FirecrackerSnapshot), then killed */
            if (g_ctl_out.len && gbuf_flush(&g_ctl_out, g_ctl) != 0) note("flushing the control socket");
            g_exit_code = send_api(api_sock, &save_api, G_SAVE_MS, vmm_gone) == 0 ? 0 : 125;
            /* (a refusal or a timeout is send_api's one line) */
            if (g_vmm > 0 && kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
            free(save_api.p);
            save_api.p = NULL; /* done: no second attempt */
        }
        if (g_hello_seen && !started && !g_main_ended && save_to == NULL && save_requests == NULL &&
            (start_gate == NULL || access(start_gate, F_OK) == 0)) { /* (an ERROR before HELLO: no START) */
            struct buf payload = { 0 };
            started = 1;
            if (start_payload(&start, &payload) != 0) {
                say_err("kiln: cannot make the VM's START: %s", strerror(errno));
                g_exit_code = 125;
                if (g_vmm > 0 && kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
            } else {
                gframe(&g_ctl_out, T_START, 0, payload.p, payload.len);
                if (g_tty) send_winsize(&g_ctl_out, T_RESIZE, 0);
            }
            free(payload.p);
        }
        if (!g_hello_seen && g_exit_code < 0 && g_vmm > 0 && now > hello_deadline) {
            char line[300];
            last_line("boot.log", line, sizeof line);
            say_err("kiln: the VM did not answer within %ld s (kernel or kiln-init hung?)%s%s; see %s/boot.log",
                    hello_timeout, line[0] ? ": last console line: guest: " : "", line, dir);
            g_exit_code = 125;
            if (kill(g_vmm, SIGKILL) != 0) note("kill vmm: %s", strerror(errno));
        }
        if (g_guest_bye == 1 && g_vmm > 0) {
            /* nothing of the guest is left to keep: its disks are flushed to their files, so the kernel's power-off
             * path and QEMU's own tear-down (tens of ms under TCG) are skipped */
            g_guest_bye = 2;
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
                else {
                    control_open(fd);
                    /* --resume with --api-sock: Firecracker loaded and resumed a checkpoint (its API requests); its
                     * kiln-init, whose connection the snapshot reset, connected again: started, no START */
                    if (resume) {
                        g_hello_seen = 1;
                        started = 1;
                        timings("hello", &g_ms_hello);
                        timings("started", &g_ms_started);
                    }
                }
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
            char data[MAX_PAYLOAD];
            ssize_t r = read(0, data, sizeof data);
            if (r > 0) gframe(&g_ctl_out, T_STDIN, 0, data, (size_t)r);
            else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                g_stdin_open = 0;
                gframe(&g_ctl_out, T_STDIN_CLOSE, 0, "", 0);
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
    /* kilnd checkpointed the VM and had QEMU quit (docs/checkpoint.md): the run ends as runsc's checkpoint ends one,
     * 0 and no complaint; the marker is written only once the state is complete */
    if (g_exit_code < 0 && g_vmm < 0 && access("checkpointed", F_OK) == 0) g_exit_code = 0;
    if (g_exit_code < 0) {
        char line[300], vmm[300];
        last_line("boot.log", line, sizeof line);
        last_line("vmm.log", vmm, sizeof vmm);
        if (g_vmm_status >= 0 && WIFSIGNALED(g_vmm_status) && WTERMSIG(g_vmm_status) == SIGSYS) {
            /* the kernel killed it for a system call outside its seccomp allowlist (docs/vm.md, "The VMM's jail") */
            say_err("kiln: the VMM was killed by its seccomp filter (SIGSYS: a system call outside its allowlist); "
                    "the VM is gone (see %s/vmm.log)", dir);
        } else if (g_main_ended) { /* the guest's ERROR: its words, escaped and marked as the guest's */
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
