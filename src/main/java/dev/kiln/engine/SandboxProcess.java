package dev.kiln.engine;

import dev.kiln.image.ImageConfig;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.engine.process.ImageProcess;
import dev.kiln.engine.process.ImageUser;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Turns requests into {@link ProcessSpec}s with Docker's rules ({@link ImageProcess} holds them). */
final class SandboxProcess {
    private SandboxProcess() {
    }

    /** {@code -e K} without a value arrives unresolved when the caller had no K: Docker then drops K. */
    static ProcessSpec resolve(ImageConfig image, SandboxConfig r, Path rootfs, String hostname) {
        ImageProcess.Flags flags = new ImageProcess.Flags(r.entrypoint(), r.cmd(), r.env(), r.workdir(), r.user(),
                r.tty(), r.openStdin());
        ProcessSpec p = ImageProcess.resolve(image, flags, rootfs, hostname, Map.of());
        if (r.settings().groupAdd().isEmpty()) {
            return p;
        }
        // --group-add: more supplementary groups, after the user's own (Docker's order)
        java.util.LinkedHashSet<Integer> gids = new java.util.LinkedHashSet<>(p.additionalGids());
        r.settings().groupAdd().forEach(g -> gids.add(ImageUser.groupId(rootfs, g)));
        return new ProcessSpec(p.args(), p.env(), p.cwd(), p.uid(), p.gid(), List.copyOf(gids), p.tty(), p.stdin());
    }

    /** An exec inherits the main process's env, cwd and user unless the request says otherwise. */
    static ProcessSpec resolveExec(ProcessSpec main, ExecConfig r, Path rootfs) {
        Map<String, String> env = new LinkedHashMap<>();
        for (List<String> source : List.of(main.env(), r.env() == null ? List.<String>of() : r.env())) {
            for (String e : source) {
                int eq = e.indexOf('=');
                if (eq > 0) {
                    env.put(e.substring(0, eq), e.substring(eq + 1));
                }
            }
        }
        List<String> envList = new ArrayList<>();
        env.forEach((k, v) -> envList.add(k + "=" + v));
        String cwd = r.workdir() == null || r.workdir().isEmpty() ? main.cwd() : ImageProcess.workingDir(r.workdir());
        if (r.user() == null || r.user().isEmpty()) {
            return new ProcessSpec(r.cmd(), envList, cwd, main.uid(), main.gid(), main.additionalGids(), r.tty(),
                    r.openStdin());
        }
        ImageUser user = ImageProcess.resolveUser(rootfs, r.user());
        return new ProcessSpec(r.cmd(), envList, cwd, user.uid(), user.gid(), user.additionalGids(), r.tty(),
                r.openStdin());
    }

    static String stopSignal(ImageConfig image) {
        return image.config() == null || image.config().stopSignal() == null ? "SIGTERM" : image.config().stopSignal();
    }
}
