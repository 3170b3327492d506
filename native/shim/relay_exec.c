/*
 * The exec relay (docs/vm.md, "Execs"):
 *
 *   kiln-shim --relay-exec EXEC_SOCK FILE
 *
 * One process exec'd in a VM: sends FILE as an EXEC request to the VM relay's EXEC_SOCK and maps that process's
 * stream onto its own stdio, as the VM relay does for the main process, so an exec is an ordinary monitored command.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "relay.h"

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

int relay_exec(int argc, char **argv) {
    if (argc != 4) return usage("--relay-exec EXEC_SOCK SPEC_FILE");
    struct buf spec = { 0 }, out = { 0 };
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
            char data[MAX_PAYLOAD];
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
