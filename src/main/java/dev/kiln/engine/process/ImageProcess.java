package dev.kiln.engine.process;

import dev.kiln.KilnException;
import dev.kiln.image.ImageConfig;
import dev.kiln.isolation.ProcessSpec;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Docker's rules for turning an image's config and the {@code run} flags into the process a sandbox runs: which
 * argv (entrypoint/cmd overrides), which environment, working directory and user (resolved against the image's own
 * /etc/passwd and /etc/group, read safely from its unpacked root filesystem).
 */
public final class ImageProcess {

    /** The PATH Docker gives a container whose image sets none. */
    public static final String DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    private ImageProcess() {
    }

    /**
     * The {@code run} flags that shape the process.
     *
     * @param entrypoint {@code --entrypoint}: null when not given (the image's applies); empty, or one empty
     *                   string ({@code --entrypoint ""}), clears the image's. Giving it also drops the image's Cmd.
     * @param cmd        the arguments after the image name; when non-empty they replace the image's Cmd
     * @param env        {@code -e} values in order: {@code K=V}, or {@code K} to take K from the caller's environment
     *                   (when the caller has no K, K is removed, also from the image's Env, as Docker does)
     * @param workdir    {@code -w}, absolute; null or empty for the image's WorkingDir (else /)
     * @param user       {@code -u}: name, uid, name:group or uid:gid; null or empty for the image's User (else root)
     */
    public record Flags(List<String> entrypoint, List<String> cmd, List<String> env, String workdir, String user,
                        boolean tty, boolean stdin) {

        public Flags {
            entrypoint = entrypoint == null ? null : List.copyOf(entrypoint);
            cmd = cmd == null ? List.of() : List.copyOf(cmd);
            env = env == null ? List.of() : List.copyOf(env);
        }

        /** No flags: {@code docker run IMAGE}. */
        public static Flags none() {
            return new Flags(null, List.of(), List.of(), null, null, false, false);
        }
    }

    /**
     * Resolves the process for {@code image} run with {@code flags} in a sandbox named {@code hostname}.
     *
     * @param rootfs    the image's unpacked root filesystem (untrusted; only /etc/passwd and /etc/group are read)
     * @param callerEnv the environment of whoever typed {@code -e K} (the CLI's, not the daemon's)
     */
    public static ProcessSpec resolve(ImageConfig image, Flags flags, Path rootfs, String hostname,
                                      Map<String, String> callerEnv) {
        ImageConfig.Runtime config = image.config() != null ? image.config()
                : new ImageConfig.Runtime(null, null, null, null, null, null, null, null, null);
        List<String> args = args(config, flags);
        String cwd = workingDir(config, flags);
        String userSpec = flags.user() != null && !flags.user().isEmpty() ? flags.user()
                : config.user() != null ? config.user() : "";
        ImageUser user = ImageUser.resolve(rootfs, userSpec);
        List<String> env = env(config, flags, hostname, user.home(), callerEnv);
        return new ProcessSpec(args, env, cwd, user.uid(), user.gid(), user.additionalGids(), flags.tty(),
                flags.stdin());
    }

    /**
     * A {@code -u} value alone (for {@code exec -u}): ids and home from the image's /etc/passwd and /etc/group. The
     * same rules and the same caveat as {@link ImageUser#resolve}: pass the image's tree, not a running sandbox's.
     */
    public static ImageUser resolveUser(Path rootfs, String user) {
        return ImageUser.resolve(rootfs, user);
    }

    static List<String> args(ImageConfig.Runtime image, Flags flags) {
        List<String> entrypoint;
        List<String> cmd;
        if (flags.entrypoint() == null) {
            entrypoint = orEmpty(image.entrypoint());
            cmd = flags.cmd().isEmpty() ? orEmpty(image.cmd()) : flags.cmd();
        } else {
            boolean cleared = flags.entrypoint().isEmpty()
                    || (flags.entrypoint().size() == 1 && flags.entrypoint().getFirst().isEmpty());
            entrypoint = cleared ? List.of() : flags.entrypoint();
            cmd = flags.cmd();
        }
        List<String> args = new ArrayList<>(entrypoint);
        args.addAll(cmd);
        if (args.isEmpty()) {
            throw KilnException.invalid("no command specified");
        }
        return args;
    }

    static String workingDir(ImageConfig.Runtime image, Flags flags) {
        if (flags.workdir() != null && !flags.workdir().isEmpty()) {
            return workingDir(flags.workdir());
        }
        if (image.workingDir() != null && !image.workingDir().isEmpty()) {
            return clean("/" + image.workingDir(), "the image's WorkingDir"); // Docker joins a relative one onto /
        }
        return "/";
    }

    /** A requested working directory ({@code -w}, exec's too): absolute, as Docker requires; cleaned. */
    public static String workingDir(String requested) {
        if (!requested.startsWith("/")) {
            throw KilnException.invalid("the working directory '" + KilnException.escape(requested)
                    + "' is invalid, it needs to be an absolute path");
        }
        return clean(requested, "the working directory");
    }

    /**
     * Docker's order: PATH, HOSTNAME (and TERM=xterm with a tty) as defaults; the -e values over the image's Env
     * replace or extend them; a bare key removes; HOME from passwd (else /) unless already set.
     */
    static List<String> env(ImageConfig.Runtime image, Flags flags, String hostname, String home,
                            Map<String, String> callerEnv) {
        List<String> fromFlags = new ArrayList<>();
        for (String value : flags.env()) {
            int eq = value.indexOf('=');
            String key = eq < 0 ? value : value.substring(0, eq);
            if (key.isEmpty()) {
                throw KilnException.invalid("invalid environment variable: " + value);
            }
            if (eq < 0 && callerEnv.containsKey(key)) {
                fromFlags.add(key + "=" + callerEnv.get(key));
            } else {
                fromFlags.add(value); // K=V, or a bare K meaning "unset"
            }
        }
        List<String> configEnv = new ArrayList<>(fromFlags);
        List<String> flagKeys = fromFlags.stream().map(ImageProcess::key).toList();
        for (String value : orEmpty(image.env())) {
            if (!flagKeys.contains(key(value))) {
                configEnv.add(value);
            }
        }

        Map<String, String> env = new LinkedHashMap<>();
        env.put("PATH", "PATH=" + DEFAULT_PATH);
        env.put("HOSTNAME", "HOSTNAME=" + hostname);
        if (flags.tty()) {
            env.put("TERM", "TERM=xterm");
        }
        for (String value : configEnv) {
            if (value.indexOf('=') < 0) {
                env.remove(value);
            } else {
                env.put(key(value), value);
            }
        }
        env.putIfAbsent("HOME", "HOME=" + home);
        return List.copyOf(env.values());
    }

    private static String key(String value) {
        int eq = value.indexOf('=');
        return eq < 0 ? value : value.substring(0, eq);
    }

    /** Linux's limits: a name of up to NAME_MAX bytes, a path of fewer than PATH_MAX; no NUL, which ends a C string. */
    private static final int NAME_MAX = 255;
    private static final int PATH_MAX = 4096;

    /** {@code absolute} cleaned, refused (one line naming {@code what}) where no Linux path could be it. */
    private static String clean(String absolute, String what) {
        if (absolute.indexOf('\0') >= 0) {
            throw KilnException.invalid(what + " " + KilnException.quote(absolute) + " contains a NUL byte");
        }
        if (absolute.getBytes(StandardCharsets.UTF_8).length >= PATH_MAX) {
            throw KilnException.invalid(what + " " + KilnException.quote(absolute) + " is longer than "
                    + (PATH_MAX - 1) + " bytes");
        }
        for (String name : absolute.split("/")) {
            if (name.getBytes(StandardCharsets.UTF_8).length > NAME_MAX) {
                throw KilnException.invalid(what + " " + KilnException.quote(absolute) + " has a name longer than "
                        + NAME_MAX + " bytes");
            }
        }
        String cleaned = Path.of(absolute).normalize().toString();
        return cleaned.isEmpty() ? "/" : cleaned;
    }

    private static List<String> orEmpty(List<String> list) {
        return list == null ? List.of() : list;
    }
}
