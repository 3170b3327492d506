package dev.kiln.containerd;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.containerd.wire.cgroups.CPUStat;
import dev.kiln.containerd.wire.cgroups.CPUUsage;
import dev.kiln.containerd.wire.cgroups.MemoryEntry;
import dev.kiln.containerd.wire.cgroups.MemoryStat;
import dev.kiln.containerd.wire.cgroups.Metrics;
import dev.kiln.containerd.wire.cgroups.PidsStat;
import dev.kiln.containerd.wire.cgroups.Throttle;

/**
 * {@code runc events --stats} (and runsc's, same JSON) as containerd's cgroups v1 Metrics: this host's controllers
 * are on cgroup v1 (hybrid), which is what CRI's stats and {@code ctr task metrics} decode.
 */
final class CgroupMetrics {
    private CgroupMetrics() {
    }

    static Metrics fromRuntimeStats(JsonNode event) {
        JsonNode d = event.path("data");
        JsonNode cpu = d.path("cpu");
        CPUUsage.Builder usage = CPUUsage.newBuilder().setTotal(cpu.path("usage").path("total").asLong())
                .setKernel(cpu.path("usage").path("kernel").asLong()).setUser(cpu.path("usage").path("user").asLong());
        for (JsonNode n : cpu.path("usage").path("percpu")) usage.addPerCpu(n.asLong());
        JsonNode mem = d.path("memory");
        JsonNode raw = mem.path("raw");
        return Metrics.newBuilder()
                .setPids(PidsStat.newBuilder().setCurrent(d.path("pids").path("current").asLong())
                        .setLimit(d.path("pids").path("limit").asLong()))
                .setCpu(CPUStat.newBuilder().setUsage(usage).setThrottling(Throttle.newBuilder()
                        .setPeriods(cpu.path("throttling").path("periods").asLong())
                        .setThrottledPeriods(cpu.path("throttling").path("throttledPeriods").asLong())
                        .setThrottledTime(cpu.path("throttling").path("throttledTime").asLong())))
                .setMemory(MemoryStat.newBuilder().setCache(raw.path("cache").asLong(mem.path("cache").asLong()))
                        .setRss(raw.path("rss").asLong()).setTotalCache(raw.path("total_cache").asLong())
                        .setTotalRss(raw.path("total_rss").asLong())
                        .setTotalInactiveFile(raw.path("total_inactive_file").asLong())
                        .setUsage(entry(mem.path("usage"))).setSwap(entry(mem.path("swap"))))
                .build();
    }

    private static MemoryEntry entry(JsonNode e) {
        return MemoryEntry.newBuilder().setLimit(e.path("limit").asLong()).setUsage(e.path("usage").asLong())
                .setMax(e.path("max").asLong()).setFailcnt(e.path("failcnt").asLong()).build();
    }
}
