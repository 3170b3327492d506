/* What kiln-shim's modes (shim.c) share: the monitor (monitor.c), the VM relay (relay.c), the exec relay (relay_exec.c). */
#ifndef KILN_SHIM_H
#define KILN_SHIM_H

#include <stddef.h>
#include "../common/io.h"
#include "../common/protocol.h"

/* Attach frames (docs/shim.md): the guest protocol's header with stream 0, and these types. */
enum {
    F_STDIN = 0, F_STDOUT = 1, F_STDERR = 2, F_EXIT = 3, F_CLOSE_STDIN = 4, F_RESIZE = 5, F_SIGNAL = 6,
    F_EXEC = 7 /* exec.sock only, client → relay: the first frame, a process spec */
};

void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xclose(int fd);
int write_atomic(const char *name, const char *text);
void rfc3339(char *out, size_t n);
__attribute__((noreturn)) void child_fail(const char *what, int code);
int usage(const char *why);

int monitor_main(int argc, char **argv); /* monitor.c */
int relay_vm(int argc, char **argv);     /* relay.c */
int relay_exec(int argc, char **argv);   /* relay_exec.c */
int vm_save(int argc, char **argv);      /* snapshot.c */

/* container.c: the monitor's container mode (the runtime's create, start and delete; the console socket) */
#include <sys/types.h>
pid_t runtime_spawn(char *const *runtime, const char *const *args, int in, int out, int err);
int runtime_run(char *const *runtime, const char *const *args, long long timeout_ms, void (*orphan)(pid_t, int));
int console_listen(void);
void console_path(char *out, size_t n);
int console_receive(int listen_fd);
pid_t read_pid_file(const char *name);

#endif
