package dev.kiln.isolation.seccomp;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The x86-64 system calls by number and name, as data: {@code syscalls-x86_64.txt} beside this class, generated once
 * from the kernel headers (the file's first lines say how). Shared by {@code kiln audit} (which counts over exactly
 * these numbers, so "all syscalls" means all of this table) and the VMM jail's allowlist
 * ({@code isolation.vm.jail.SeccompAllowlist}, which names its syscalls by these names).
 */
public final class SyscallTable {

    private final NavigableMap<Integer, String> names;
    private final Map<String, Integer> numbers;

    private SyscallTable(NavigableMap<Integer, String> names) {
        this.names = Collections.unmodifiableNavigableMap(names);
        Map<String, Integer> byName = new java.util.HashMap<>();
        names.forEach((nr, name) -> byName.put(name, nr));
        this.numbers = Map.copyOf(byName);
    }

    /** The table of the x86-64 native ABI (arch AUDIT_ARCH_X86_64), read once. */
    public static SyscallTable x86_64() {
        return X86_64.TABLE;
    }

    private static final class X86_64 {
        static final SyscallTable TABLE = load("syscalls-x86_64.txt");
    }

    private static SyscallTable load(String resource) {
        NavigableMap<Integer, String> names = new TreeMap<>();
        try (InputStream in = SyscallTable.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException(resource + " is missing from the kiln jar");
            }
            BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII));
            for (String line; (line = r.readLine()) != null; ) {
                if (line.isBlank() || line.startsWith("#")) {
                    continue;
                }
                String[] f = line.strip().split(" ");
                if (f.length != 2 || names.put(Integer.parseInt(f[0]), f[1]) != null) {
                    throw new IllegalStateException(resource + ": bad or repeated line \"" + line + "\"");
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + resource, e);
        }
        return new SyscallTable(names);
    }

    /** Every syscall number, ascending. */
    public NavigableMap<Integer, String> all() {
        return names;
    }

    public int size() {
        return names.size();
    }

    public String name(int nr) {
        String name = names.get(nr);
        return name != null ? name : "syscall_" + nr;
    }

    public Optional<Integer> number(String name) {
        return Optional.ofNullable(numbers.get(name));
    }
}
