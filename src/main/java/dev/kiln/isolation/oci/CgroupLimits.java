package dev.kiln.isolation.oci;

import dev.kiln.KilnException;
import dev.kiln.isolation.Resources;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * New limits for a running container or gVisor sandbox ({@code docker update}), written to its cgroups as its runtime
 * would have at create (RuntimeSpec: the CFS quota for {@code --cpus}, {@code memory} and {@code pids}, gVisor's
 * pids scaled to its host tasks). One path for both runtimes: runsc has no {@code update} command, and runc's would
 * not know kiln's own memory cgroup above the runtime's (v1, {@link SandboxCgroup}), whose limit moves with it.
 * gVisor's Sentry sized its guest's view of memory at start; the host cgroup still enforces the new limit.
 */
final class CgroupLimits {
    private CgroupLimits() {
    }

    static void apply(String id, Resources limits, OciRuntime runtime) {
        try {
            for (Cgroups.Hierarchy h : Cgroups.hierarchies()) {
                Path child = h.dir(SandboxCgroup.runtimePath(id));
                Path parent = h.dir(SandboxCgroup.parentPath(id));
                if (!Files.isDirectory(child)) {
                    continue;
                }
                boolean v2 = h.controllers().isEmpty();
                String enabled = v2 && Files.exists(child.resolve("cgroup.controllers"))
                        ? " " + Files.readString(child.resolve("cgroup.controllers")).strip() + " " : "";
                if (v2 ? enabled.contains(" memory ") : h.controllers().contains("memory")) {
                    memory(child, parent, limits.memoryBytes(), v2);
                }
                if (v2 ? enabled.contains(" cpu ") : h.controllers().contains("cpu")) {
                    cpu(child, limits.nanoCpus(), v2);
                }
                if (v2 ? enabled.contains(" pids ") : h.controllers().contains("pids")) {
                    long pids = limits.pidsLimit() <= 0 ? 0 : runtime == OciRuntime.RUNSC
                            ? RuntimeSpec.GVISOR_PIDS_BASE + RuntimeSpec.GVISOR_PIDS_PER_PROCESS * limits.pidsLimit()
                            : limits.pidsLimit();
                    Files.writeString(child.resolve("pids.max"), pids == 0 ? "max" : Long.toString(pids));
                }
            }
        } catch (IOException e) {
            throw KilnException.conflict("cannot update the sandbox's limits: " + e.getMessage()
                    + (e.getMessage() != null && e.getMessage().contains("busy")
                    ? " (a memory limit below what it uses now)" : ""));
        }
    }

    /**
     * v1: the runtime's cgroup gets the limit, kiln's above it the limit less {@link SandboxCgroup#PARENT_MARGIN};
     * raised parent first, lowered child first, so the child never asks for more than its parent allows.
     */
    private static void memory(Path child, Path parent, long bytes, boolean v2) throws IOException {
        if (v2) {
            Files.writeString(child.resolve("memory.max"), bytes > 0 ? Long.toString(bytes) : "max");
            return;
        }
        String limit = bytes > 0 ? Long.toString(bytes) : "-1";
        String parentLimit = bytes <= 0 ? "-1" : Long.toString(bytes > 2 * SandboxCgroup.PARENT_MARGIN
                ? bytes - SandboxCgroup.PARENT_MARGIN : bytes);
        Path childFile = child.resolve("memory.limit_in_bytes");
        Path parentFile = parent.resolve("memory.limit_in_bytes");
        long now = Long.parseLong(Files.readString(childFile).strip());
        boolean raising = bytes <= 0 || bytes > now;
        boolean withParent = Files.exists(parentFile);
        if (raising && withParent) {
            Files.writeString(parentFile, parentLimit);
        }
        Files.writeString(childFile, limit);
        if (!raising && withParent) {
            Files.writeString(parentFile, parentLimit);
        }
    }

    private static void cpu(Path child, long nanoCpus, boolean v2) throws IOException {
        long period = RuntimeSpec.CPU_PERIOD_US;
        long quota = nanoCpus <= 0 ? -1 : nanoCpus * period / 1_000_000_000L;
        if (v2) {
            Files.writeString(child.resolve("cpu.max"), (quota < 0 ? "max" : Long.toString(quota)) + " " + period);
            return;
        }
        Files.writeString(child.resolve("cpu.cfs_period_us"), Long.toString(period));
        Files.writeString(child.resolve("cpu.cfs_quota_us"), Long.toString(quota));
    }
}
