package dev.kiln.api;

import dev.kiln.api.v1.CreateRequest;
import dev.kiln.api.v1.ExecRequest;
import dev.kiln.engine.ExecConfig;
import dev.kiln.engine.SandboxConfig;

/**
 * kiln's {@code /v1} wire records → the engine's records. The wire records are what the CLI sends and stay as they
 * are for it; the engine's may change shape without the CLI noticing. Docker's face has its own translator
 * ({@code api.docker.CreateTranslator}).
 */
final class V1Translator {
    private V1Translator() {
    }

    /** {@code POST /v1/sandboxes}: the CLI has already resolved what only the caller can (its env, --env-file). */
    static SandboxConfig config(CreateRequest r) {
        return new SandboxConfig(r.image(), r.name(), r.cmd(), r.entrypoint(), r.env(), r.workdir(), r.user(),
                r.hostname(), r.isolation(), r.runtime(), r.nanoCpus(), r.memory(), r.pidsLimit(), r.readOnly(),
                r.labels(), r.tty(), r.openStdin(), r.autoRemove(), r.platform(), r.publish(), r.network(),
                r.publishAll(), r.dns(), r.dnsSearch(), r.dnsOptions(), r.extraHosts(), r.kernel(), r.diskSize(),
                mounts(r.mounts()), RunFlagsTranslator.settings(r.flags()),
                supervision(r.supervision()));
    }

    /** {@code -v}, {@code --mount}, {@code --tmpfs} as typed, checked by Docker's rules. */
    private static dev.kiln.engine.volume.Mounts mounts(CreateRequest.MountFlags f) {
        if (f == null) {
            return null;
        }
        java.util.Map<String, String> tmpfs = null;
        if (f.tmpfs() != null) {
            tmpfs = new java.util.LinkedHashMap<>();
            for (String t : f.tmpfs()) {
                int colon = t.indexOf(':');
                if (tmpfs.put(colon < 0 ? t : t.substring(0, colon), colon < 0 ? "" : t.substring(colon + 1)) != null) {
                    throw dev.kiln.KilnException.invalid("duplicate mount point " + t);
                }
            }
        }
        return dev.kiln.engine.volume.MountSyntax.parse(f.volumes(), f.mounts(), tmpfs, null, null);
    }

    /** --restart and --health-*: checked by the engine's records (one line naming what is wrong). */
    static dev.kiln.engine.Supervision supervision(dev.kiln.api.v1.Supervision s) {
        if (s == null) {
            return null;
        }
        boolean health = s.healthTest() != null || s.healthInterval() != 0 || s.healthTimeout() != 0
                || s.healthStartPeriod() != 0 || s.healthRetries() != 0;
        return new dev.kiln.engine.Supervision(dev.kiln.engine.RestartPolicy.parse(s.restart()), health
                ? new dev.kiln.engine.Healthcheck(s.healthTest(), s.healthInterval(), s.healthTimeout(),
                s.healthStartPeriod(), s.healthRetries()) : null);
    }

    /** {@code POST /v1/sandboxes/{id}/exec}. */
    static ExecConfig exec(ExecRequest r) {
        return new ExecConfig(r.cmd(), r.env(), r.workdir(), r.user(), r.tty(), r.openStdin(), r.detach());
    }
}
