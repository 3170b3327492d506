package dev.kiln.audit;

import java.util.List;

/**
 * What {@code kiln audit} found: one row per front process of each isolation it ran ({@code measured}), then the
 * reference rows ({@code published}: figures from their projects, or a profile evaluated, never a process here).
 *
 * @param kernel   the host kernel's release
 * @param syscalls how many syscalls the table has ("all" means this many); {@code table}: where it comes from
 */
public record AuditReport(String image, List<String> command, String kernel, int syscalls, String table,
                          double windowSeconds, List<Row> rows) {

    public static final String MEASURED = "measured";
    public static final String PUBLISHED = "published, not measured";

    /**
     * One wall. {@code allowed}: syscalls its filters let through whatever the arguments; {@code argumentChecked}:
     * allowed for some arguments only; {@code denied}: the rest of the table. {@code used}: distinct syscalls the
     * process made while traced. Null where not known (reference rows have no process).
     *
     * @param filter      how the filters were read ("no filter", "1 filter, 1015 instructions", per-thread sets)
     * @param privileges  what /proc says of the process
     * @param usage       the syscalls it made, with counts
     * @param note        what the figure means or where it comes from
     * @param error       one line, when this row could not be measured
     */
    public record Row(String isolation, String source, String process, Long pid, Integer allowed,
                      Integer argumentChecked, Integer denied, Integer used, String filter,
                      List<String> allowedSyscalls, List<String> argumentCheckedSyscalls, Privileges privileges,
                      SyscallUsage usage, String note, String error) {

        /** A figure from elsewhere: {@code allowed} syscalls, as its project states it. */
        static Row published(String name, int allowed, String note) {
            return new Row(name, PUBLISHED, null, null, allowed, null, null, null, null, null, null, null, null, note,
                    null);
        }

        static Row failed(String isolation, String error) {
            return new Row(isolation, MEASURED, null, null, null, null, null, null, null, null, null, null, null, null,
                    error);
        }

        /** Syscalls reachable at all: allowed plus allowed with argument checks. */
        public Integer reachable() {
            return allowed == null ? null : allowed + (argumentChecked == null ? 0 : argumentChecked);
        }
    }
}
