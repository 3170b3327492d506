package dev.kiln.engine.volume;

import dev.kiln.KilnException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Docker's mount syntaxes and rules, one place for the CLI's flags ({@code -v}, {@code --mount}, {@code --tmpfs}, sent
 * as typed) and Docker's fields ({@code HostConfig.Binds}, {@code Mounts}, {@code Tmpfs}, {@code Config.Volumes}).
 * Every refusal is one line naming the value (INVALID: exit 125, HTTP 400). What is checked here needs no host: the
 * bind source's existence is {@link Volumes#prepare}'s (kilnd's host).
 */
public final class MountSyntax {
    /** Docker's local volume names. */
    static final Pattern VOLUME_NAME = Pattern.compile("[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}");
    private static final Set<String> PROPAGATIONS = Set.of("private", "rprivate", "shared", "rshared", "slave",
            "rslave");
    /** Docker for Mac's consistency hints: accepted and meaningless on Linux, as Docker on Linux treats them. */
    private static final Set<String> CONSISTENCY = Set.of("consistent", "cached", "delegated", "default");
    private static final Set<String> TMPFS_FLAGS = Set.of("ro", "rw", "exec", "noexec", "suid", "nosuid", "dev",
            "nodev", "sync", "async", "dirsync", "atime", "noatime", "relatime", "norelatime", "strictatime",
            "nostrictatime", "diratime", "nodiratime");
    private static final Pattern SIZE = Pattern.compile("\\d+[kKmMgG]?|\\d{1,3}%");
    private static final Pattern OCTAL = Pattern.compile("0?[0-7]{3,4}");
    private static final Pattern NUMBER = Pattern.compile("\\d+");

    private MountSyntax() {
    }

    /** All of a request's mounts, checked together (no two at one target). */
    public static Mounts parse(List<String> volumes, List<String> mounts, Map<String, String> tmpfs,
                               List<MountSpec> structured, List<String> anonymous) {
        List<MountSpec> out = new ArrayList<>();
        if (volumes != null) volumes.forEach(v -> out.add(volume(v)));
        if (mounts != null) mounts.forEach(m -> out.add(mount(m)));
        if (structured != null) out.addAll(structured);
        if (tmpfs != null) tmpfs.forEach((target, options) -> out.add(tmpfs(target, options)));
        Set<String> targets = new HashSet<>();
        out.forEach(m -> {
            if (!targets.add(m.target())) {
                throw KilnException.invalid("duplicate mount point " + m.target() + " (give one mount per target)");
            }
        });
        // Config.Volumes (docker create -v /path sends it too): an anonymous volume unless a mount covers the path
        if (anonymous != null) {
            for (String a : anonymous) {
                String target = target(a, a);
                if (targets.add(target)) {
                    out.add(new MountSpec(MountSpec.VOLUME, null, target, false, null, "", MountSpec.VOLUME, false,
                            false, true, null, null));
                }
            }
        }
        return out.isEmpty() ? null : new Mounts(out);
    }

    /** {@code -v [SOURCE:]TARGET[:MODE]} and {@code HostConfig.Binds}. */
    public static MountSpec volume(String spec) {
        noNul(spec);
        String[] parts = spec.split(":", -1);
        if (parts.length > 3 || parts.length == 0 || spec.isEmpty()) {
            throw KilnException.invalid("invalid volume specification " + KilnException.quote(spec)
                    + " (use SOURCE:TARGET[:ro] or a TARGET alone)");
        }
        if (parts.length == 1) {
            return new MountSpec(MountSpec.VOLUME, null, target(parts[0], spec), false, null, "", MountSpec.BIND,
                    false, false, true, null, null);
        }
        String source = parts[0];
        String target = target(parts[1], spec);
        String mode = parts.length == 3 ? parts[2] : "";
        boolean bind = source.startsWith("/");
        if (!bind) {
            volumeName(source);
        }
        boolean readOnly = false;
        boolean noCopy = false;
        String propagation = null;
        boolean rwSeen = false;
        for (String o : mode.isEmpty() ? new String[0] : mode.split(",")) {
            switch (o) {
                case "ro", "rw" -> {
                    if (rwSeen) throw invalidMode(o, spec);
                    rwSeen = true;
                    readOnly = o.equals("ro");
                }
                // SELinux relabelling: this host has no SELinux policy for sandboxes, so there is nothing to label
                case "z", "Z" -> { }
                case "nocopy" -> {
                    if (bind) throw invalidMode(o, spec);
                    noCopy = true;
                }
                default -> {
                    if (PROPAGATIONS.contains(o) && bind && propagation == null) {
                        propagation = o;
                    } else if (!CONSISTENCY.contains(o)) {
                        throw invalidMode(o, spec);
                    }
                }
            }
        }
        if (bind) {
            return new MountSpec(MountSpec.BIND, source(source, spec), target, readOnly,
                    propagation == null ? "rprivate" : propagation, mode, MountSpec.BIND, true, false, false, null,
                    null);
        }
        return new MountSpec(MountSpec.VOLUME, source, target, readOnly, null, mode, MountSpec.BIND, false, noCopy,
                false, null, null);
    }

    /** {@code --mount type=bind|volume|tmpfs,source=,target=,readonly,...}: Docker's CSV keys. */
    public static MountSpec mount(String csv) {
        noNul(csv);
        Map<String, String> kv = new LinkedHashMap<>();
        Map<String, String> labels = new LinkedHashMap<>();
        for (String field : csv.split(",")) {
            int eq = field.indexOf('=');
            String key = (eq < 0 ? field : field.substring(0, eq)).strip().toLowerCase(java.util.Locale.ROOT);
            String value = eq < 0 ? null : field.substring(eq + 1);
            if (key.equals("volume-label")) {
                String v = value == null ? "" : value;
                int e2 = v.indexOf('=');
                labels.put(e2 < 0 ? v : v.substring(0, e2), e2 < 0 ? "" : v.substring(e2 + 1));
                continue;
            }
            key = switch (key) {
                case "src" -> "source";
                case "dst", "destination" -> "target";
                case "ro" -> "readonly";
                default -> key;
            };
            if (kv.put(key, value) != null) {
                throw KilnException.invalid("--mount " + KilnException.quote(csv) + " gives " + key + " twice");
            }
        }
        String type = kv.getOrDefault("type", MountSpec.VOLUME);
        String target = kv.get("target");
        if (target == null) {
            throw KilnException.invalid("--mount " + KilnException.quote(csv) + " has no target (target=/PATH)");
        }
        boolean readOnly = flag(kv.get("readonly"), "readonly", csv, kv.containsKey("readonly"));
        Long size = null;
        Integer fileMode = null;
        for (Map.Entry<String, String> e : kv.entrySet()) {
            String key = e.getKey();
            switch (key) {
                case "type", "source", "target", "readonly", "consistency" -> { }
                case "bind-propagation", "bind-create-mountpoint" -> onlyFor(type, MountSpec.BIND, key, csv);
                case "volume-nocopy" -> onlyFor(type, MountSpec.VOLUME, key, csv);
                case "volume-driver" -> {
                    onlyFor(type, MountSpec.VOLUME, key, csv);
                    if (!"local".equals(e.getValue())) {
                        throw KilnException.invalid("volume driver " + KilnException.quote(e.getValue())
                                + " is not kiln's: kiln has the local driver only");
                    }
                }
                case "tmpfs-size" -> {
                    onlyFor(type, MountSpec.TMPFS, key, csv);
                    size = bytes(e.getValue(), csv);
                }
                case "tmpfs-mode" -> {
                    onlyFor(type, MountSpec.TMPFS, key, csv);
                    fileMode = octal(e.getValue(), csv);
                }
                default -> throw KilnException.invalid("--mount " + KilnException.quote(csv) + ": kiln does not "
                        + "know the key " + KilnException.quote(key));
            }
        }
        if (!labels.isEmpty()) onlyFor(type, MountSpec.VOLUME, "volume-label", csv);
        return structured(type, kv.get("source"), target, readOnly, kv.get("bind-propagation"),
                flag(kv.get("volume-nocopy"), "volume-nocopy", csv, kv.containsKey("volume-nocopy")), labels, size,
                fileMode, csv);
    }

    /**
     * One mount as Docker's {@code HostConfig.Mounts} entry gives it (and {@code --mount} after its CSV):
     * {@code size} in bytes and {@code fileMode} (tmpfs) may be null.
     */
    public static MountSpec structured(String type, String source, String target, boolean readOnly,
                                       String propagation, boolean noCopy, Map<String, String> labels, Long size,
                                       Integer fileMode, String context) {
        String t = target(target, context);
        source = source == null || source.isEmpty() ? null : source;
        switch (type == null ? "" : type) {
            case MountSpec.BIND -> {
                if (source == null) {
                    throw KilnException.invalid("bind mount to " + t + " has no source (source=/HOST/PATH)");
                }
                if (propagation != null && !propagation.isEmpty() && !PROPAGATIONS.contains(propagation)) {
                    throw KilnException.invalid("invalid bind propagation " + KilnException.quote(propagation)
                            + " (use one of rprivate, private, rshared, shared, rslave, slave)");
                }
                return new MountSpec(MountSpec.BIND, source(source, context), t, readOnly,
                        propagation == null || propagation.isEmpty() ? "rprivate" : propagation, readOnly ? "ro" : "",
                        "mount", false, false, false, null, null);
            }
            case MountSpec.VOLUME -> {
                if (source != null) volumeName(source);
                return new MountSpec(MountSpec.VOLUME, source, t, readOnly, null, readOnly ? "ro" : "", "mount",
                        false, noCopy, source == null, null, labels);
            }
            case MountSpec.TMPFS -> {
                if (source != null) {
                    throw KilnException.invalid("a tmpfs mount has no source (" + KilnException.quote(source)
                            + " given for " + t + ")");
                }
                List<String> options = new ArrayList<>();
                if (size != null && size > 0) options.add("size=" + size);
                if (fileMode != null) options.add("mode=" + Integer.toOctalString(fileMode));
                if (readOnly) options.add("ro");
                return new MountSpec(MountSpec.TMPFS, null, t, readOnly, null, "", "mount", false, false, false,
                        options, null);
            }
            default -> throw KilnException.invalid("invalid mount type " + KilnException.quote(type)
                    + " (use bind, volume or tmpfs)");
        }
    }

    /** {@code --tmpfs TARGET[:OPTIONS]} and {@code HostConfig.Tmpfs} ({@code {"/run": "size=64m,mode=1777"}}). */
    public static MountSpec tmpfs(String target, String options) {
        noNul(target);
        String t = target(target, target);
        List<String> checked = new ArrayList<>();
        boolean readOnly = false;
        if (options != null && !options.isEmpty()) {
            noNul(options);
            for (String o : options.split(",")) {
                int eq = o.indexOf('=');
                String key = eq < 0 ? o : o.substring(0, eq);
                String value = eq < 0 ? null : o.substring(eq + 1);
                String context = "--tmpfs " + t + ":" + options;
                boolean ok = switch (key) {
                    case "size", "nr_blocks", "nr_inodes" -> value != null && SIZE.matcher(value).matches();
                    case "mode" -> value != null && OCTAL.matcher(value).matches();
                    case "uid", "gid" -> value != null && NUMBER.matcher(value).matches();
                    default -> value == null && TMPFS_FLAGS.contains(key);
                };
                if (!ok) {
                    throw KilnException.invalid("invalid tmpfs option " + KilnException.quote(o) + " in " + context
                            + (value != null ? " (size=N[k|m|g], mode=OCTAL, uid=N, gid=N)" : ""));
                }
                readOnly |= key.equals("ro");
                checked.add(o);
            }
        }
        return new MountSpec(MountSpec.TMPFS, null, t, readOnly, null, options == null ? "" : options,
                MountSpec.TMPFS, false, false, false, checked, null);
    }

    /** A volume name: Docker's rule, which also keeps it one path element under kiln's volume directory. */
    public static String volumeName(String name) {
        if (name == null || !VOLUME_NAME.matcher(name).matches() || name.contains("..")) {
            throw KilnException.invalid("invalid volume name " + KilnException.quote(name) + ": only "
                    + "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (a bind mount's source is an absolute path)");
        }
        return name;
    }

    private static String source(String source, String context) {
        if (!source.startsWith("/")) {
            throw KilnException.invalid("invalid bind source " + KilnException.quote(source) + " in "
                    + KilnException.quote(context) + ": it must be an absolute path on kilnd's host");
        }
        return Path.of(source).normalize().toString();
    }

    /** An absolute path in the sandbox, normalised; never its root or /proc, which the sandbox needs as they are. */
    static String target(String target, String context) {
        if (target == null || !target.startsWith("/")) {
            throw KilnException.invalid("invalid mount target " + KilnException.quote(target) + " in "
                    + KilnException.quote(context) + ": it must be an absolute path inside the sandbox");
        }
        String t = Path.of(target).normalize().toString();
        if (t.equals("/")) {
            throw KilnException.invalid("invalid mount target \"/\" in " + KilnException.quote(context)
                    + ": the sandbox's root cannot be replaced by a mount (mount under it, e.g. /data)");
        }
        if (t.equals("/proc") || t.startsWith("/proc/")) {
            throw KilnException.invalid("invalid mount target " + KilnException.quote(t) + " in "
                    + KilnException.quote(context) + ": /proc is the sandbox's own proc filesystem");
        }
        return t;
    }

    private static boolean flag(String value, String key, String csv, boolean present) {
        if (!present) return false;
        if (value == null) return true;
        return switch (value.toLowerCase(java.util.Locale.ROOT)) {
            case "1", "true" -> true;
            case "0", "false" -> false;
            default -> throw KilnException.invalid("--mount " + KilnException.quote(csv) + ": " + key
                    + " takes true or false, not " + KilnException.quote(value));
        };
    }

    private static void onlyFor(String type, String wanted, String key, String csv) {
        if (!wanted.equals(type)) {
            throw KilnException.invalid("--mount " + KilnException.quote(csv) + ": " + key + " is for type="
                    + wanted + " only");
        }
    }

    private static long bytes(String value, String csv) {
        if (value == null || !value.matches("\\d+[kKmMgG]?[bB]?")) {
            throw KilnException.invalid("invalid tmpfs-size " + KilnException.quote(value) + " in "
                    + KilnException.quote(csv) + " (a number of bytes, e.g. 64m)");
        }
        String v = value.replaceAll("[bB]$", "");
        char unit = Character.toLowerCase(v.charAt(v.length() - 1));
        long n = Long.parseLong(Character.isDigit(unit) ? v : v.substring(0, v.length() - 1));
        return switch (unit) {
            case 'k' -> n << 10;
            case 'm' -> n << 20;
            case 'g' -> n << 30;
            default -> n;
        };
    }

    private static int octal(String value, String csv) {
        if (value == null || !OCTAL.matcher(value).matches()) {
            throw KilnException.invalid("invalid tmpfs-mode " + KilnException.quote(value) + " in "
                    + KilnException.quote(csv) + " (an octal mode, e.g. 1777)");
        }
        return Integer.parseInt(value, 8);
    }

    private static KilnException invalidMode(String option, String spec) {
        return KilnException.invalid("invalid mode " + KilnException.quote(option) + " in volume specification "
                + KilnException.quote(spec) + " (use ro or rw, z or Z, a bind propagation, or nocopy for a volume)");
    }

    private static void noNul(String s) {
        if (s != null && s.indexOf('\0') >= 0) {
            throw KilnException.invalid("a mount specification must not contain a NUL byte");
        }
    }
}
