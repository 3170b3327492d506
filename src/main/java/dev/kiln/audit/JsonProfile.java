package dev.kiln.audit;

import dev.kiln.isolation.seccomp.SyscallTable;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A seccomp profile in its JSON form: Docker's ({@code syscalls} rules with {@code includes}/{@code excludes} by
 * architecture, capability and minimum kernel, as moby's profiles/seccomp filters them) or the OCI runtime spec's
 * {@code linux.seccomp} (the same rules without conditions). Evaluated per syscall of a {@link SyscallTable} the way
 * libseccomp compiles it: a rule without arguments decides its syscall; rules with argument checks allow only the
 * arguments they match, the default action answers the rest; a syscall without rules gets the default action. So
 * the result can be compared with what {@link BpfEvaluator} reads from the filter runc actually installed.
 */
public final class JsonProfile {

    private final JsonNode profile;

    private JsonProfile(JsonNode profile) {
        this.profile = profile;
    }

    public static JsonProfile of(JsonNode profile) {
        if (!profile.hasNonNull("defaultAction")) {
            throw new IllegalArgumentException("not a seccomp profile: no defaultAction");
        }
        return new JsonProfile(profile);
    }

    /**
     * The surface for a process on Go architecture {@code goArch} (Docker's names: {@code amd64}) holding the
     * capabilities {@code caps} ({@code CAP_…}), on kernel {@code kernelRelease} (e.g. {@code 6.1.0}).
     */
    public SyscallSurface evaluate(SyscallTable table, String goArch, Set<String> caps, String kernelRelease) {
        SeccompAction fallback = action(profile.get("defaultAction").asText(), profile.path("defaultErrnoRet"));
        Map<String, List<Rule>> rules = new HashMap<>();
        for (JsonNode r : profile.path("syscalls")) {
            if (!applies(r, goArch, caps, kernelRelease)) {
                continue;
            }
            Rule rule = new Rule(action(r.get("action").asText(), r.path("errnoRet")), r.path("args").size() > 0);
            for (JsonNode name : r.path("names")) {
                rules.computeIfAbsent(name.asText(), k -> new ArrayList<>()).add(rule);
            }
        }
        List<SyscallSurface.Verdict> verdicts = new ArrayList<>();
        table.all().forEach((nr, name) -> verdicts.add(SyscallSurface.Verdict.of(nr, name,
                outcomes(rules.getOrDefault(name, List.of()), fallback))));
        return new SyscallSurface(verdicts);
    }

    private record Rule(SeccompAction action, boolean argumentChecked) {
    }

    private static Set<SeccompAction> outcomes(List<Rule> rules, SeccompAction fallback) {
        Set<SeccompAction> plain = new LinkedHashSet<>();
        Set<SeccompAction> checked = new LinkedHashSet<>();
        for (Rule r : rules) {
            (r.argumentChecked() ? checked : plain).add(r.action());
        }
        if (!plain.isEmpty()) {
            // two unconditional rules for one syscall: libseccomp refuses such a profile; the stricter is the safe read
            return Set.of(plain.stream().reduce(SeccompAction::stricter).orElseThrow());
        }
        if (checked.isEmpty()) {
            return Set.of(fallback);
        }
        checked.add(fallback); // arguments no rule matches
        return checked;
    }

    /** moby's filter: excluded arches/caps drop a rule; included ones must all hold; minKernel must be reached. */
    private static boolean applies(JsonNode rule, String goArch, Set<String> caps, String kernelRelease) {
        JsonNode in = rule.path("includes");
        JsonNode ex = rule.path("excludes");
        if (texts(ex.path("arches")).contains(goArch) || texts(ex.path("caps")).stream().anyMatch(caps::contains)) {
            return false;
        }
        List<String> arches = texts(in.path("arches"));
        if (!arches.isEmpty() && !arches.contains(goArch)) {
            return false;
        }
        if (!caps.containsAll(texts(in.path("caps")))) {
            return false;
        }
        return !in.hasNonNull("minKernel") || atLeast(kernelRelease, in.get("minKernel").asText());
    }

    static boolean atLeast(String release, String minimum) {
        int[] have = version(release);
        int[] want = version(minimum);
        return have[0] != want[0] ? have[0] > want[0] : have[1] >= want[1];
    }

    private static int[] version(String release) {
        String[] parts = release.split("[.-]");
        return new int[] {Integer.parseInt(parts[0]), parts.length > 1 ? Integer.parseInt(parts[1]) : 0};
    }

    /** libseccomp's action names as runc reads them; an errno defaults to EPERM, as runc's does. */
    static SeccompAction action(String name, JsonNode errnoRet) {
        int errno = errnoRet.isMissingNode() || errnoRet.isNull() ? 1 : errnoRet.asInt();
        return switch (name) {
            case "SCMP_ACT_ALLOW" -> SeccompAction.ALLOWED;
            case "SCMP_ACT_ERRNO" -> SeccompAction.errno(errno);
            case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD" -> new SeccompAction(SeccompAction.KILL_THREAD);
            case "SCMP_ACT_KILL_PROCESS" -> new SeccompAction(SeccompAction.KILL_PROCESS);
            case "SCMP_ACT_TRAP" -> new SeccompAction(SeccompAction.TRAP);
            case "SCMP_ACT_TRACE" -> new SeccompAction(SeccompAction.TRACE | (errno & 0xffff));
            case "SCMP_ACT_LOG" -> new SeccompAction(SeccompAction.LOG);
            case "SCMP_ACT_NOTIFY" -> new SeccompAction(SeccompAction.USER_NOTIF);
            default -> throw new IllegalArgumentException("unknown seccomp action " + name);
        };
    }

    private static List<String> texts(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }
}
