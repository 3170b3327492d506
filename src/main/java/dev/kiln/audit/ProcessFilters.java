package dev.kiln.audit;

import dev.kiln.isolation.seccomp.SyscallTable;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The seccomp filters of every thread of a process (filters belong to threads: gVisor syncs one filter to all of
 * them, Firecracker gives each thread its own), grouped by identical stacks, and the surface they leave together.
 *
 * @param description e.g. "no filter", "1 filter (615 instructions) on 18 threads", or one entry per distinct stack
 */
record ProcessFilters(SyscallSurface surface, String description) {

    /** Thread-by-thread mode 1: the four syscalls of strict mode, as the kernel's own list (kernel/seccomp.c). */
    static final SeccompFilter STRICT = SeccompFilter.of(
            SeccompFilter.Instruction.stmt(SeccompFilter.LD | SeccompFilter.W | SeccompFilter.ABS, 0),
            SeccompFilter.Instruction.jump(SeccompFilter.JMP | SeccompFilter.JEQ, 0, 4, 0),   // read
            SeccompFilter.Instruction.jump(SeccompFilter.JMP | SeccompFilter.JEQ, 1, 3, 0),   // write
            SeccompFilter.Instruction.jump(SeccompFilter.JMP | SeccompFilter.JEQ, 60, 2, 0),  // exit
            SeccompFilter.Instruction.jump(SeccompFilter.JMP | SeccompFilter.JEQ, 15, 1, 0),  // rt_sigreturn
            SeccompFilter.Instruction.stmt(SeccompFilter.RET, SeccompAction.KILL_THREAD),
            SeccompFilter.Instruction.stmt(SeccompFilter.RET, SeccompAction.ALLOW));

    /** Reads every thread of {@code pid} (threads that end meanwhile are skipped). */
    static ProcessFilters of(long pid, BpfEvaluator evaluator, SyscallTable table) throws IOException {
        Path tasks = Path.of("/proc", Long.toString(pid), "task");
        Map<String, List<Long>> threadsByStack = new LinkedHashMap<>();
        Map<String, List<SeccompFilter>> stacks = new LinkedHashMap<>();
        List<Path> threads;
        try (var list = Files.list(tasks)) {
            threads = list.sorted().toList();
        }
        for (Path task : threads) {
            long tid = Long.parseLong(task.getFileName().toString());
            String mode;
            try {
                mode = Files.readAllLines(task.resolve("status")).stream().filter(l -> l.startsWith("Seccomp:"))
                        .map(l -> l.substring(8).strip()).findFirst().orElse("0");
            } catch (IOException gone) {
                continue;
            }
            List<SeccompFilter> stack = switch (mode) {
                case "0" -> List.of();
                case "1" -> List.of(STRICT);
                default -> {
                    try {
                        yield FilterDump.of(tid);
                    } catch (FilterDump.Failure e) {
                        if (tid != pid && !Files.exists(task)) {
                            yield null; // the thread ended
                        }
                        throw e;
                    }
                }
            };
            if (stack == null) {
                continue;
            }
            String key = (mode.equals("1") ? "strict:" : "") + stack.stream().map(f -> Arrays.toString(f.bytes()))
                    .reduce("", String::concat);
            threadsByStack.computeIfAbsent(key, k -> new ArrayList<>()).add(tid);
            stacks.putIfAbsent(key, stack);
        }
        if (stacks.isEmpty()) {
            throw new IOException("process " + pid + " has ended");
        }
        List<SyscallSurface> surfaces = new ArrayList<>();
        List<String> parts = new ArrayList<>();
        for (var e : stacks.entrySet()) {
            List<SeccompFilter> stack = e.getValue();
            surfaces.add(stack.isEmpty() ? SyscallSurface.unfiltered(table) : evaluator.evaluate(stack));
            int n = threadsByStack.get(e.getKey()).size();
            String on = " on " + n + (n == 1 ? " thread" : " threads");
            if (stack.isEmpty()) {
                parts.add("no filter" + on);
            } else if (e.getKey().startsWith("strict:")) {
                parts.add("strict mode" + on);
            } else {
                parts.add(stack.size() + (stack.size() == 1 ? " filter (" : " filters (")
                        + String.join("+", stack.stream().map(f -> Integer.toString(f.program().size())).toList())
                        + " instructions)" + on);
            }
        }
        return new ProcessFilters(SyscallSurface.union(surfaces), String.join("; ", parts));
    }
}
