package dev.kiln.isolation.oci;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * kiln's seccomp profile (a data file in kiln's own grouped format, {@code seccomp.json} next to this class) and its
 * translation to the OCI {@code linux.seccomp} object for one native architecture and one capability set.
 *
 * <p>The file format: {@code allow} groups of syscall names, each with a {@code why}, optionally limited to one
 * native {@code arch} or to sandboxes holding {@code requiresCapability}; {@code conditional} rules for single
 * syscalls whose arguments decide ({@code allowArg0In}, {@code allowArg0NotIn}, {@code allowArg0HasNoneOf}) or which
 * fail with a chosen {@code errno}, each dropped when the sandbox holds its {@code unlessCapability}. Unknown fields
 * are rejected.
 */
public final class SeccompProfile {

    /** The errno values the profile may name; seccomp returns them instead of running the syscall. */
    private static final Map<String, Integer> ERRNO = Map.of("EPERM", 1, "ENOSYS", 38);
    /** Arguments that seccomp compares are 64-bit; values outside this range cannot be meant. */
    private static final long MAX_ARG = 0xFFFF_FFFFL;
    /** {@code allowArg0NotIn} turns gaps into EQ rules; wider gaps would need range rules libseccomp lacks per arg. */
    private static final int MAX_GAP = 16;

    private final File file;

    private SeccompProfile(File file) {
        this.file = file;
        file.validate();
    }

    /** kiln's default profile, read once per process (a jar replaced under a running daemon cannot break it). */
    public static SeccompProfile kilnDefault() {
        return Default.PROFILE;
    }

    private static final class Default {
        static final SeccompProfile PROFILE = load();
    }

    private static SeccompProfile load() {
        try (InputStream in = SeccompProfile.class.getResourceAsStream("seccomp.json")) {
            if (in == null) {
                throw new IllegalStateException("seccomp.json is missing from the kiln jar");
            }
            return parse(in);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read kiln's seccomp profile", e);
        }
    }

    /** Parses a profile in kiln's format; unknown fields and missing reasons are errors. */
    public static SeccompProfile parse(InputStream in) throws IOException {
        ObjectMapper mapper = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);
        return new SeccompProfile(mapper.readValue(in, File.class));
    }

    /** The native architectures this profile has an architecture list for (e.g. {@code x86_64}, {@code aarch64}). */
    public Set<String> architectures() {
        return file.architectures.keySet();
    }

    /**
     * The OCI {@code linux.seccomp} object for a sandbox on native architecture {@code arch} whose bounding set is
     * {@code capabilities} (names as in the OCI spec, {@code CAP_…}).
     */
    public ObjectNode toOci(String arch, Collection<String> capabilities) {
        List<String> scmpArches = file.architectures.get(arch);
        if (scmpArches == null) {
            throw new IllegalArgumentException("kiln's seccomp profile has no rules for architecture " + arch
                    + " (known: " + file.architectures.keySet() + ")");
        }
        Set<String> caps = Set.copyOf(capabilities);
        JsonNodeFactory json = JsonNodeFactory.instance;
        ObjectNode oci = json.objectNode();
        oci.put("defaultAction", "SCMP_ACT_ERRNO");
        oci.put("defaultErrnoRet", ERRNO.get(file.defaultErrno));
        ArrayNode arches = oci.putArray("architectures");
        scmpArches.forEach(arches::add);
        ArrayNode rules = oci.putArray("syscalls");

        Set<String> allowed = new LinkedHashSet<>();
        for (Group group : file.allow) {
            if ((group.arch == null || group.arch.equals(arch))
                    && (group.requiresCapability == null || caps.contains(group.requiresCapability))) {
                allowed.addAll(group.syscalls);
            }
        }
        ObjectNode plain = rules.addObject();
        ArrayNode names = plain.putArray("names");
        allowed.forEach(names::add);
        plain.put("action", "SCMP_ACT_ALLOW");

        for (Conditional rule : file.conditional) {
            if (rule.unlessCapability != null && caps.contains(rule.unlessCapability)) {
                continue;
            }
            for (List<ArgCheck> args : rule.argumentRules()) {
                ObjectNode entry = rules.addObject();
                entry.putArray("names").add(rule.syscall);
                if (rule.errno != null) {
                    entry.put("action", "SCMP_ACT_ERRNO");
                    entry.put("errnoRet", ERRNO.get(rule.errno));
                } else {
                    entry.put("action", "SCMP_ACT_ALLOW");
                }
                if (!args.isEmpty()) {
                    ArrayNode argsNode = entry.putArray("args");
                    for (ArgCheck check : args) {
                        ObjectNode a = argsNode.addObject();
                        a.put("index", check.index);
                        a.put("value", check.value);
                        a.put("valueTwo", check.valueTwo);
                        a.put("op", check.op);
                    }
                }
            }
        }
        return oci;
    }

    /** One comparison of a syscall argument, as in the OCI spec. */
    private record ArgCheck(int index, long value, long valueTwo, String op) {
    }

    private record File(String about,
                        String defaultErrno,
                        Map<String, List<String>> architectures,
                        List<Group> allow,
                        List<Conditional> conditional) {

        void validate() {
            require(defaultErrno != null && ERRNO.containsKey(defaultErrno), "defaultErrno must be one of " + ERRNO.keySet());
            require(architectures != null && !architectures.isEmpty(), "architectures must not be empty");
            require(allow != null && !allow.isEmpty(), "allow must not be empty");
            for (Group group : allow) {
                group.validate(architectures.keySet());
            }
            for (Conditional rule : conditional == null ? List.<Conditional>of() : conditional) {
                rule.validate();
            }
        }
    }

    private record Group(String why, String arch, String requiresCapability, List<String> syscalls) {
        void validate(Set<String> arches) {
            require(why != null && !why.isBlank(), "every allow group needs a 'why' (" + syscalls + ")");
            require(syscalls != null && !syscalls.isEmpty(), "allow group '" + why + "' has no syscalls");
            require(arch == null || arches.contains(arch), "allow group '" + why + "' names unknown arch " + arch);
            require(requiresCapability == null || requiresCapability.startsWith("CAP_"),
                    "requiresCapability must be a CAP_ name: " + requiresCapability);
            syscalls.forEach(SeccompProfile::requireName);
        }
    }

    private record Conditional(String syscall, String why, String unlessCapability, String errno,
                               @JsonProperty("allowArg0In") Map<String, Long> arg0In,
                               @JsonProperty("allowArg0NotIn") Map<String, Long> arg0NotIn,
                               @JsonProperty("allowArg0HasNoneOf") Map<String, Long> arg0HasNoneOf) {

        void validate() {
            requireName(syscall);
            require(why != null && !why.isBlank(), "conditional rule for " + syscall + " needs a 'why'");
            int kinds = (errno != null ? 1 : 0) + (arg0In != null ? 1 : 0) + (arg0NotIn != null ? 1 : 0)
                    + (arg0HasNoneOf != null ? 1 : 0);
            require(kinds == 1, "conditional rule for " + syscall
                    + " needs exactly one of errno, allowArg0In, allowArg0NotIn, allowArg0HasNoneOf");
            require(errno == null || ERRNO.containsKey(errno), "unknown errno " + errno + " for " + syscall);
            for (Map<String, Long> values : Arrays.asList(arg0In, arg0NotIn, arg0HasNoneOf)) {
                if (values != null) {
                    require(!values.isEmpty(), "empty value list for " + syscall);
                    values.values().forEach(v -> require(v >= 0 && v <= MAX_ARG, "value out of range for " + syscall));
                }
            }
            argumentRules();
        }

        /** One list of argument checks per OCI rule (the checks in one list must all hold). */
        List<List<ArgCheck>> argumentRules() {
            List<List<ArgCheck>> out = new ArrayList<>();
            if (errno != null) {
                out.add(List.of());
            } else if (arg0In != null) {
                for (long v : new TreeSet<>(arg0In.values())) {
                    out.add(List.of(new ArgCheck(0, v, 0, "SCMP_CMP_EQ")));
                }
            } else if (arg0HasNoneOf != null) {
                long mask = 0;
                for (long flag : arg0HasNoneOf.values()) {
                    mask |= flag;
                }
                out.add(List.of(new ArgCheck(0, mask, 0, "SCMP_CMP_MASKED_EQ")));
            } else {
                // Allow everything but the listed values: below the lowest, each value in the gaps, above the highest.
                List<Long> denied = new ArrayList<>(new TreeSet<>(arg0NotIn.values()));
                out.add(List.of(new ArgCheck(0, denied.getFirst(), 0, "SCMP_CMP_LT")));
                for (int i = 0; i + 1 < denied.size(); i++) {
                    long gap = denied.get(i + 1) - denied.get(i) - 1;
                    require(gap <= MAX_GAP, "allowArg0NotIn for " + syscall + " leaves a gap wider than " + MAX_GAP);
                    for (long v = denied.get(i) + 1; v < denied.get(i + 1); v++) {
                        out.add(List.of(new ArgCheck(0, v, 0, "SCMP_CMP_EQ")));
                    }
                }
                out.add(List.of(new ArgCheck(0, denied.getLast(), 0, "SCMP_CMP_GT")));
            }
            return out;
        }
    }

    private static void requireName(String name) {
        require(name != null && name.matches("[a-z_][a-z0-9_]*"), "not a syscall name: " + name);
    }

    private static void require(boolean condition, String message) {
        if (!condition) {
            throw new IllegalArgumentException("invalid seccomp profile: " + message);
        }
    }
}
