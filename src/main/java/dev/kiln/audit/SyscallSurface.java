package dev.kiln.audit;

import dev.kiln.isolation.seccomp.SyscallTable;

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

    /**
     * The surface of a process whose threads carry different filters (Firecracker installs one per thread): a
     * syscall is as open as on its most open thread.
     */
    public static SyscallSurface union(List<SyscallSurface> threads) {
        if (threads.size() == 1) {
            return threads.getFirst();
        }
        List<Verdict> out = new java.util.ArrayList<>();
        for (int n = 0; n < threads.getFirst().size(); n++) {
            final int i = n;
            Set<SeccompAction> outcomes = new java.util.LinkedHashSet<>();
            for (SyscallSurface t : threads) {
                outcomes.addAll(t.verdicts().get(i).outcomes());
            }
            Verdict v = threads.getFirst().verdicts().get(i);
            Verdict any = Verdict.of(v.nr(), v.name(), outcomes);
            boolean allowedSomewhere = threads.stream().anyMatch(t -> t.verdicts().get(i).kind() == Kind.ALLOWED);
            out.add(allowedSomewhere ? new Verdict(v.nr(), v.name(), Kind.ALLOWED, outcomes) : any);
        }
        return new SyscallSurface(out);
    }

    /** The verdict on one syscall, by name. */
    public Verdict verdict(String name) {
        return verdicts.stream().filter(v -> v.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no syscall " + name + " in the table"));
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
