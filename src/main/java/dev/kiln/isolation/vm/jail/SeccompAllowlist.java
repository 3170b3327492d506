package dev.kiln.isolation.vm.jail;

import dev.kiln.isolation.seccomp.SyscallTable;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The system calls a VMM may make, as data kiln owns (like Firecracker's per-target JSON): {@code qemu-seccomp.json}
 * beside this class, each entry with the reason it is there. An entry is an allowed call (optionally only for some
 * values of one argument), or a call refused softly with an errno that the VMM handles (a probe it can do without);
 * everything else kills the VMM ({@code defaultAction: kill-process}: a compromised VMM gets no second try and
 * cannot probe the filter, and a call kiln did not measure shows as a VMM killed by SIGSYS, named as such, rather
 * than as an error path nobody tested). Entries with {@code when} apply only to sandboxes with that trait
 * ({@code user-network}: QEMU's slirp) and replace an entry of the same name.
 */
public record SeccompAllowlist(List<Rule> rules) {

    /** Errnos an entry may return, by name (x86-64 values). */
    private static final Map<String, Integer> ERRNOS = Map.of("EPERM", 1, "ENOENT", 2, "EACCES", 13, "ENOSYS", 38);

    /** A condition on one argument (its low 32 bits: every argument checked here is an int or a flag word). */
    public record ArgCheck(int index, List<Long> in, long mask, long value) {
        boolean masked() {
            return in == null;
        }
    }

    /**
     * One entry.
     *
     * @param errno    0: allowed (when args, if any, match); else the errno the call fails with
     * @param measured false for a call not seen in kiln's measurements (kept for what QEMU or glibc are known to do)
     */
    public record Rule(String name, int nr, String why, int errno, ArgCheck args, String when, boolean measured) {
        public boolean allows() {
            return errno == 0;
        }
    }

    /** QEMU's allowlist. */
    public static SeccompAllowlist qemu() {
        return load("qemu-seccomp.json");
    }

    /** The rules for a VMM with these traits ({@code user-network}, …), one per syscall. */
    public List<Rule> rulesFor(Set<String> traits) {
        Map<String, Rule> byName = new LinkedHashMap<>();
        for (Rule r : rules) {
            if (r.when() == null) {
                byName.putIfAbsent(r.name(), r);
            }
        }
        for (Rule r : rules) {
            if (r.when() != null && traits.contains(r.when())) {
                byName.put(r.name(), r);
            }
        }
        return List.copyOf(byName.values());
    }

    /** How many syscalls a VMM with these traits may make (the soft refusals are not counted). */
    public int allowedCount(Set<String> traits) {
        return (int) rulesFor(traits).stream().filter(Rule::allows).count();
    }

    @JsonIgnoreProperties(ignoreUnknown = false)
    record FileEntry(@JsonProperty("name") String name, @JsonProperty("why") String why,
                     @JsonProperty("errno") String errno, @JsonProperty("args") FileArgs args,
                     @JsonProperty("when") String when, @JsonProperty("measured") Boolean measured) {}

    record FileArgs(@JsonProperty("index") int index, @JsonProperty("in") List<Long> in,
                    @JsonProperty("maskedEq") List<Long> maskedEq) {}

    record FileAllowlist(@JsonProperty("vmm") String vmm, @JsonProperty("measured") String measured,
                         @JsonProperty("defaultAction") String defaultAction,
                         @JsonProperty("syscalls") List<FileEntry> syscalls) {}

    static SeccompAllowlist load(String resource) {
        try (InputStream in = SeccompAllowlist.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException(resource + " is missing from the kiln jar");
            }
            FileAllowlist file = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                    .readValue(in, FileAllowlist.class);
            return parse(resource, file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + resource, e);
        }
    }

    private static SeccompAllowlist parse(String resource, FileAllowlist file) {
        if (!"kill-process".equals(file.defaultAction())) {
            throw new IllegalStateException(resource + ": defaultAction must be kill-process");
        }
        SyscallTable table = SyscallTable.x86_64();
        List<Rule> rules = new ArrayList<>();
        for (FileEntry e : file.syscalls()) {
            String where = resource + ": " + e.name() + ": ";
            int nr = table.number(e.name()).orElseThrow(() -> new IllegalStateException(where + "no such syscall"));
            if (e.why() == null || e.why().isBlank()) {
                throw new IllegalStateException(where + "every entry says why it is there");
            }
            int errno = 0;
            if (e.errno() != null) {
                Integer n = ERRNOS.get(e.errno());
                if (n == null || e.args() != null) {
                    throw new IllegalStateException(where + "errno is one of " + ERRNOS.keySet() + ", without args");
                }
                errno = n;
            }
            ArgCheck check = null;
            if (e.args() != null) {
                FileArgs a = e.args();
                if (a.index() < 0 || a.index() > 5 || (a.in() == null) == (a.maskedEq() == null)
                        || (a.maskedEq() != null && a.maskedEq().size() != 2)
                        || (a.in() != null && (a.in().isEmpty() || a.in().size() > 16))) {
                    throw new IllegalStateException(where + "args: index 0..5 and one of in: [1..16 values] or "
                            + "maskedEq: [mask, value]");
                }
                check = a.in() != null ? new ArgCheck(a.index(), List.copyOf(a.in()), 0, 0)
                        : new ArgCheck(a.index(), null, a.maskedEq().get(0), a.maskedEq().get(1));
                for (long v : check.in() != null ? check.in() : List.of(check.mask(), check.value())) {
                    if (v < 0 || v > 0xffffffffL) {
                        throw new IllegalStateException(where + "argument values are 32-bit");
                    }
                }
            }
            rules.add(new Rule(e.name(), nr, e.why(), errno, check, e.when(), e.measured() == null || e.measured()));
        }
        for (Rule r : rules) { // one entry per name and trait
            if (rules.stream().filter(o -> o.name().equals(r.name()) && java.util.Objects.equals(o.when(), r.when()))
                    .count() > 1) {
                throw new IllegalStateException(resource + ": " + r.name() + " is listed twice");
            }
        }
        return new SeccompAllowlist(List.copyOf(rules));
    }
}
