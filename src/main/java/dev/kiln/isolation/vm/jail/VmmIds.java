package dev.kiln.isolation.vm.jail;

import dev.kiln.KilnException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * The ids kiln's VMMs run as: one uid (and the gid of the same number) per sandbox, from a range kiln reserves
 * (config {@code vmm-uid-range}, default {@link #DEFAULT_RANGE}), held from the sandbox's first jailed start until it
 * is removed, so no two sandboxes ever share one and a removed sandbox's files are never readable by the next holder.
 * Claims are files, {@code ROOT/vmm-ids/<uid>} holding the sandbox's id and directory, created with O_EXCL (so two
 * starts cannot take the same id); the sandbox keeps its number in {@code SANDBOX/vmm-id}. A claim whose sandbox
 * directory is gone (kilnd died between the two writes, or the directory was removed by hand) is taken back.
 */
public final class VmmIds {

    /**
     * 100000000-100065535: above the 65536 ids per user that subordinate-id tools hand out from 100000 (a host would
     * need ~1500 such users to reach it), and far from system and login ids; checked against the host's
     * /etc/passwd, /etc/group, /etc/subuid and /etc/subgid before the first use ({@link Range#checkUnowned}).
     */
    public static final String DEFAULT_RANGE = "100000000-100065535";
    private static final String HELD = "vmm-id";

    /** An inclusive range of ids; never 0 (root) and below 2^31 - 1 (tools that read ids as signed ints). */
    public record Range(long first, long last) {
        public Range {
            if (first < 1000 || last < first || last >= Integer.MAX_VALUE) {
                throw KilnException.invalid("vmm-uid-range " + first + "-" + last + ": FIRST-LAST with "
                        + "1000 <= FIRST <= LAST < 2147483647");
            }
        }

        public static Range parse(String text) {
            String[] f = text.strip().split("-");
            try {
                if (f.length == 2) return new Range(Long.parseLong(f[0].strip()), Long.parseLong(f[1].strip()));
            } catch (NumberFormatException e) {
                // below
            }
            throw KilnException.invalid("vmm-uid-range \"" + text + "\": FIRST-LAST, e.g. " + DEFAULT_RANGE);
        }

        long size() {
            return last - first + 1;
        }

        /**
         * Refuses a range holding an id the host gives to someone: a user or group in /etc/passwd or /etc/group, or
         * subordinate ids of /etc/subuid or /etc/subgid (user namespaces map them). A VMM running as such an id could
         * read or signal what belongs to it.
         */
        public void checkUnowned() {
            for (String file : List.of("/etc/passwd", "/etc/group")) {
                for (String line : lines(file)) {
                    String[] f = line.split(":");
                    if (f.length > 2 && f[2].matches("\\d{1,10}") && contains(Long.parseLong(f[2]))) {
                        throw owned(f[2] + " (" + f[0] + ") of " + file);
                    }
                }
            }
            for (String file : List.of("/etc/subuid", "/etc/subgid")) {
                for (String line : lines(file)) {
                    String[] f = line.split(":");
                    if (f.length == 3 && f[1].matches("\\d{1,10}") && f[2].matches("\\d{1,10}")) {
                        long from = Long.parseLong(f[1]), to = from + Long.parseLong(f[2]) - 1;
                        if (from <= last && to >= first) throw owned(from + "-" + to + " (" + f[0] + ") of " + file);
                    }
                }
            }
        }

        boolean contains(long id) {
            return id >= first && id <= last;
        }

        private KilnException owned(String what) {
            return KilnException.invalid("vmm-uid-range " + first + "-" + last + " holds " + what + ": kiln's "
                    + "VMMs must run as ids nobody on this host owns (set another vmm-uid-range)");
        }

        private static List<String> lines(String file) {
            try {
                return Files.readAllLines(Path.of(file));
            } catch (NoSuchFileException e) {
                return List.of();
            } catch (IOException e) {
                throw new KilnException(KilnException.Kind.INTERNAL, "cannot read " + file + ": " + e.getMessage(), e);
            }
        }
    }

    private final Path claims;
    private final Range range;

    /** {@code claims}: kiln's {@code ROOT/vmm-ids}. */
    public VmmIds(Path claims, Range range) {
        this.claims = claims;
        this.range = range;
    }

    public Range range() {
        return range;
    }

    /** The sandbox's id, taking one on its first start: its number's place in the range follows from its id. */
    public synchronized int acquire(String sandboxId, Path sandboxDir) {
        try {
            Files.createDirectories(claims);
            Integer held = held(sandboxDir);
            if (held != null && sandboxId.equals(owner(held))) return held;
            long start = Integer.toUnsignedLong(sandboxId.hashCode()) % range.size();
            for (long i = 0; i < range.size(); i++) {
                int id = (int) (range.first() + (start + i) % range.size());
                if (claim(id, sandboxId, sandboxDir)) {
                    Files.writeString(sandboxDir.resolve(HELD), id + "\n");
                    return id;
                }
            }
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot take an id for the VMM of sandbox "
                    + sandboxId + " in " + claims + ": " + e.getMessage(), e);
        }
        throw KilnException.conflict("every id of vmm-uid-range " + range.first() + "-" + range.last()
                + " is held by a sandbox: remove some, or widen the range");
    }

    /** The id the sandbox holds, if any (inspect; a jailed VMM of a previous start). */
    public Integer held(Path sandboxDir) {
        try {
            return Integer.valueOf(Files.readString(sandboxDir.resolve(HELD)).strip());
        } catch (IOException | NumberFormatException e) {
            return null;
        }
    }

    /** Gives the sandbox's id back (at its removal). */
    public synchronized void release(String sandboxId, Path sandboxDir) {
        Integer id = held(sandboxDir);
        try {
            if (id != null && sandboxId.equals(owner(id))) Files.deleteIfExists(claims.resolve(id.toString()));
            Files.deleteIfExists(sandboxDir.resolve(HELD));
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot release the VMM id of sandbox " + sandboxId
                    + ": " + e.getMessage(), e);
        }
    }

    private boolean claim(int id, String sandboxId, Path sandboxDir) throws IOException {
        Path file = claims.resolve(Integer.toString(id));
        String record = sandboxId + "\n" + sandboxDir.toAbsolutePath() + "\n";
        for (int attempt = 0; attempt < 2; attempt++) {
            try {
                Files.writeString(file, record, StandardCharsets.UTF_8, StandardOpenOption.CREATE_NEW,
                        StandardOpenOption.WRITE);
                return true;
            } catch (FileAlreadyExistsException e) {
                List<String> holder = lines(file);
                if (holder.size() < 2 || Files.isDirectory(Path.of(holder.get(1)))) return false;
                Files.deleteIfExists(file); // its sandbox is gone: the id is free again
            }
        }
        return false;
    }

    private String owner(int id) {
        List<String> holder = lines(claims.resolve(Integer.toString(id)));
        return holder.isEmpty() ? null : holder.getFirst();
    }

    private static List<String> lines(Path file) {
        try {
            return Files.readAllLines(file);
        } catch (IOException e) {
            return List.of();
        }
    }
}
