/* kiln-shim's entry: its first argument picks the mode (shim.c says what each is). */
#include <string.h>

#include "shim.h"

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--relay-vm") == 0) return relay_vm(argc, argv);
    if (argc > 1 && strcmp(argv[1], "--relay-exec") == 0) return relay_exec(argc, argv);
    if (argc > 1 && strcmp(argv[1], "--vm-save") == 0) return vm_save(argc, argv);
    return monitor_main(argc, argv);
}
