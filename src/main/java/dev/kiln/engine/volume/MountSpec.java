package dev.kiln.engine.volume;

import com.fasterxml.jackson.annotation.JsonInclude;

import java.util.List;
import java.util.Map;

/**
 * One mount a sandbox asked for, as the engine keeps it in the sandbox's config (checked by {@link MountSyntax}; a
 * volume's name and a bind's real path filled in by {@link Volumes#prepare} when the sandbox is created).
 *
 * @param type        {@code bind}, {@code volume} or {@code tmpfs}
 * @param source      bind: the absolute host path (after create: the real path, resolved once); volume: its name
 *                    (null until create for an anonymous volume); tmpfs: null
 * @param target      the absolute path inside the sandbox, normalised
 * @param readOnly    mounted read-only
 * @param propagation bind: {@code rprivate} (Docker's default), {@code private}, {@code rshared}, {@code shared},
 *                    {@code rslave}, {@code slave}
 * @param mode        the {@code -v} mode as the user typed it ({@code ro,z}), for inspect's {@code Mode}
 * @param origin      where it was asked: {@code bind} ({@code -v}/{@code Binds}), {@code mount} ({@code --mount}/
 *                    {@code Mounts}), {@code tmpfs} ({@code --tmpfs}/{@code Tmpfs}), {@code volume}
 *                    ({@code Config.Volumes} or the image's {@code VOLUME}); inspect shows each back where it came
 * @param createSource bind: a missing host path is made as a directory ({@code -v}'s rule; {@code --mount} refuses)
 * @param noCopy      volume: do not copy the image's content into a new empty volume ({@code volume-nocopy})
 * @param anonymous   volume: made for this sandbox alone, removed with it by {@code rm -v} and {@code --rm}
 * @param tmpfsOptions tmpfs: checked mount options ({@code size=N}, {@code mode=OCTAL}, {@code noexec}, …)
 * @param labels      volume: labels a new volume gets ({@code volume-label})
 */
@JsonInclude(JsonInclude.Include.NON_DEFAULT)
public record MountSpec(String type, String source, String target, boolean readOnly, String propagation, String mode,
                        String origin, boolean createSource, boolean noCopy, boolean anonymous,
                        List<String> tmpfsOptions, Map<String, String> labels) {

    public static final String BIND = "bind";
    public static final String VOLUME = "volume";
    public static final String TMPFS = "tmpfs";

    public MountSpec {
        tmpfsOptions = tmpfsOptions == null ? List.of() : List.copyOf(tmpfsOptions);
        labels = labels == null ? Map.of() : Map.copyOf(labels);
        mode = mode == null ? "" : mode;
    }

    public boolean bind() {
        return BIND.equals(type);
    }

    public boolean volume() {
        return VOLUME.equals(type);
    }

    public boolean tmpfs() {
        return TMPFS.equals(type);
    }

    MountSpec withSource(String newSource, boolean isAnonymous) {
        return new MountSpec(type, newSource, target, readOnly, propagation, mode, origin, createSource, noCopy,
                isAnonymous, tmpfsOptions, labels);
    }
}
