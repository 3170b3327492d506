package dev.kiln.audit;

import java.util.List;
import java.util.Set;

/**
 * What the seccomp filters of a process let through, one verdict per syscall of the {@link SyscallTable}: allowed
 * whatever the arguments, allowed for some arguments only, or denied (an errno, a kill, a trap, or a decision handed
 * to a tracer or supervisor, which the filter alone does not grant).
 */
public record SyscallSurface(List<Verdict> verdicts) {

    public enum Kind { ALLOWED, ARGUMENT_CHECKED, DENIED }

    /** {@code outcomes}: every answer the filters can give for this syscall, over all argument values. */
    public record Verdict(int nr, String name, Kind kind, Set<SeccompAction> outcomes) {
        public Verdict {
            outcomes = Set.copyOf(outcomes);
        }

        static Verdict of(int nr, String name, Set<SeccompAction> outcomes) {
            boolean some = outcomes.stream().anyMatch(SeccompAction::allows);
            boolean all = outcomes.stream().allMatch(SeccompAction::allows);
            return new Verdict(nr, name, all ? Kind.ALLOWED : some ? Kind.ARGUMENT_CHECKED : Kind.DENIED, outcomes);
        }
    }

    public SyscallSurface {
        verdicts = List.copyOf(verdicts);
    }

    /** No filter: every syscall of the table runs. */
    public static SyscallSurface unfiltered(SyscallTable table) {
        return new SyscallSurface(table.all().entrySet().stream()
                .map(e -> Verdict.of(e.getKey(), e.getValue(), Set.of(SeccompAction.ALLOWED))).toList());
    }

    public int count(Kind kind) {
        return (int) verdicts.stream().filter(v -> v.kind() == kind).count();
    }

    public List<String> names(Kind kind) {
        return verdicts.stream().filter(v -> v.kind() == kind).map(Verdict::name).toList();
    }

    /** Allowed for at least some arguments: the syscalls a process can reach the host kernel with. */
    public int reachable() {
        return count(Kind.ALLOWED) + count(Kind.ARGUMENT_CHECKED);
    }

    public int size() {
        return verdicts.size();
    }
}
