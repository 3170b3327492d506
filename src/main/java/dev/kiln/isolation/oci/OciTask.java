package dev.kiln.isolation.oci;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.KilnException;
import dev.kiln.OwnerOnly;
import dev.kiln.isolation.ProcessSpec;
import dev.kiln.isolation.RunningProcess;
import dev.kiln.isolation.SandboxSpec;
import dev.kiln.isolation.SandboxStats;
import dev.kiln.isolation.shim.Shim;
import dev.kiln.isolation.shim.ShimBinary;
import dev.kiln.isolation.shim.ShimTask;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** A container or gVisor sandbox's run: the runtime under its kiln-shim, driven with the runtime's own commands. */
final class OciTask extends ShimTask {

    static final int SIGKILL = 9;

    private final OciIsolator oci;
    private final SandboxSpec spec;

    OciTask(OciIsolator oci, SandboxSpec spec, Shim shim) {
        super(shim);
        this.oci = oci;
        this.spec = spec;
    }

    @Override
    public void kill(int signal) {
        // SIGKILL goes to every process of the sandbox (--all): gVisor's init may not die of a lone SIGKILL, and a
        // killed sandbox must end whatever its init was doing
        OciIsolator.Result r = oci.run(signal == SIGKILL ? oci.command(spec, "kill", "--all", spec.id(),
                Integer.toString(SIGKILL)) : oci.command(spec, "kill", spec.id(), Integer.toString(signal)));
        if (r.code() != 0) {
            throw KilnException.conflict("cannot signal sandbox " + spec.name() + ": " + r.firstLine());
        }
    }

    @Override
    public RunningProcess exec(String execId, ProcessSpec process, Duration waitAttach) {
        // short names: the shim's attach.sock must fit a unix socket path (108 bytes) under the sandbox's dir
        Path dir = spec.dir().resolve("x").resolve(execId.length() > 12 ? execId.substring(0, 12) : execId);
        Path processJson = dir.resolve("process.json");
        try {
            Files.createDirectories(dir);
            // the exec's environment may carry secrets: owner-only, as the sandbox's config.json
            OwnerOnly.write(processJson, new ObjectMapper().writeValueAsBytes(RuntimeSpec.process(process,
                    spec.settings())));
        } catch (IOException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot write " + processJson + ": " + e.getMessage(),
                    e);
        }
        List<String> cmd = oci.command(spec, "exec", "--process", processJson.toString(), spec.id());
        return Shim.launch(ShimBinary.locate(), dir, OciIsolator.options(process, waitAttach, dir.resolve("log.json")),
                cmd);
    }

    @Override
    public String top() {
        OciIsolator.Result r = oci.run(oci.command(spec, "ps", spec.id()));
        if (r.code() != 0) {
            throw KilnException.conflict("cannot list processes of " + spec.name() + ": " + r.firstLine());
        }
        return r.out();
    }

    @Override
    public SandboxStats stats() {
        return Cgroups.stats(RuntimeSpec.cgroupsPath(spec.id()));
    }

    /** The runtime's own freezer ({@code runc pause}: the cgroup freezer, returning once every process is frozen). */
    @Override
    public void pause() {
        OciIsolator.Result r = oci.run(oci.command(spec, "pause", spec.id()));
        if (r.code() != 0) {
            throw new KilnException(KilnException.Kind.UNAVAILABLE, "cannot pause sandbox " + spec.name() + ": "
                    + r.firstLine());
        }
    }

    @Override
    public void resume() {
        OciIsolator.Result r = oci.run(oci.command(spec, "resume", spec.id()));
        if (r.code() != 0) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot resume sandbox " + spec.name() + ": "
                    + r.firstLine());
        }
    }

    /** Its cgroups, rewritten in place ({@link CgroupLimits}); the processes keep running. */
    @Override
    public void update(dev.kiln.isolation.Resources limits) {
        CgroupLimits.apply(spec.id(), limits, oci.runtime());
    }

    @Override
    public boolean oomKilled() {
        return oci.oomKilled(spec);
    }

    /** {@code runc state}'s pid is the container's init (the workload); {@code runsc state}'s is the Sentry. */
    @Override
    public List<Long> frontPids() {
        OciIsolator.Result r = oci.run(oci.command(spec, "state", spec.id()));
        if (r.code() != 0) {
            return List.of();
        }
        try {
            long pid = new ObjectMapper().readTree(r.out()).path("pid").asLong(0);
            return pid > 0 && ProcessHandle.of(pid).isPresent() ? List.of(pid) : List.of();
        } catch (IOException e) {
            return List.of();
        }
    }
}
