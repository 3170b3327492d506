#!/usr/bin/env python3
"""The suite's report (bench/run calls it; `bench/run --report-only` calls it alone).

    python3 bench/report.py SAMPLES_DIR RESULTS_DIR

SAMPLES_DIR holds suite.meta ("key<TAB>value" lines written by bench/run) and one BENCH.tsv per benchmark that ran
("tool<TAB>metric<TAB>seconds" samples, "#status<TAB>peer<TAB>not available: why", "#meta<TAB>key<TAB>value").
Writes RESULTS_DIR/<date>-<host>.md (a subset's, bench/run --only: <date>-<host>-only-<benches>.md, so the day's
suite report stays) and, when gnuplot is installed, RESULTS_DIR/<base>-<bench>.png: bars at the median with min/max
whiskers per tool, the goal drawn as a red mark on kiln's bar.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

samples_dir, results_dir = sys.argv[1], sys.argv[2]


def read_pairs(path):
    out = {}
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            k, _, v = line.rstrip("\n").partition("\t")
            if k:
                out[k] = v
    return out


suite = read_pairs(os.path.join(samples_dir, "suite.meta"))


class Bench:
    def __init__(self, name):
        self.name = name
        self.samples, self.status, self.meta = {}, {}, {}
        self.ran = name in suite.get("benchmarks", "").split(",")
        self.failure = suite.get(name + ".failure")
        path = os.path.join(samples_dir, name + ".tsv")
        self.has_data = os.path.exists(path)
        if self.has_data:
            for line in open(path, encoding="utf-8"):
                parts = line.rstrip("\n").split("\t", 2)
                if len(parts) != 3:
                    continue
                a, b, c = parts
                if a == "#status":
                    self.status[b] = c
                elif a == "#meta":
                    self.meta[b] = c
                elif not a.startswith("#"):
                    key = a if b == "wall" else a + "." + b
                    try:
                        self.samples.setdefault(key, []).append(float(c))
                    except ValueError:
                        pass

    def stats(self, key, scale):
        v = sorted(x * scale for x in self.samples.get(key, []))
        if not v:
            return None
        return v[0], statistics.median(v), v[-1], len(v)

    def median(self, key, scale=1.0):
        s = self.stats(key, scale)
        return s[1] if s else None

    def why_missing(self, peer):
        """Why a row has no samples: the peer's status line, the benchmark's failure, or not run."""
        if not self.ran:
            return "not run (not in --only)"
        if self.failure:
            return "not available: the benchmark failed (" + self.failure + ")"
        if not self.has_data:
            return "not available: no samples"
        if peer and peer in self.status:
            s = self.status[peer]
            return s if s.startswith("not available") else "not available: " + s
        return "not available: no samples"


# Per benchmark: the unit, the table's rows (key, label, peer whose absence explains a missing row) and the chart's
# bars (key, short label, peer).
BENCHES = {
    "run-latency": {
        "title": "Run latency: `run --rm IMAGE true` (busybox), warm daemons",
        "unit": "ms", "scale": 1000.0, "fmt": "{:.0f}",
        "rows": [
            ("kiln.container", "kiln `run --rm --network none` (container: runc)", None),
            ("kiln.container.bridge", "kiln `run --rm` (container, default network: the kiln bridge)", None),
            ("podman", "`podman run --rm --network none` (runc, overlay)", "podman"),
            ("ctr", "`ctr run --rm` (runc v2 shim)", "ctr"),
            ("runc", "bare `runc run` (prepared bundle)", None),
            ("kiln.gvisor", "kiln `run --rm --network none --isolation gvisor`", None),
            ("runsc", "bare `runsc --platform=ptrace run` (same bundle)", "runsc"),
            ("kiln.version", "`kiln --version` (CLI start, AOT cache)", None),
            ("kiln.version.noaot", "`KILN_NO_AOT=1 kiln --version` (CLI start, no AOT cache)", None),
            ("kiln.ps", "`kiln ps` (CLI start + one API round trip)", None),
        ],
        "bars": [
            ("kiln.container", "kiln\\ncontainer", None), ("kiln.container.bridge", "kiln\\n+bridge", None),
            ("podman", "podman", "podman"), ("ctr", "ctr", "ctr"), ("runc", "bare runc", None), ("kiln.gvisor", "kiln\\ngvisor", None), ("runsc", "bare runsc", "runsc"),
            ("kiln.version", "kiln\\n--version", None), ("kiln.ps", "kiln ps", None),
        ],
    },
    "vm-boot": {
        "title": "VM boot: `kiln run --rm --isolation vm IMAGE true` vs bare QEMU microvm (same kernel and flags)",
        "unit": "ms", "scale": 1000.0, "fmt": "{:.0f}",
        "rows": [
            ("kiln.vm", "kiln `run --rm --network none --isolation vm`", None),
            ("kiln.vm.bridge", "kiln `run --rm --isolation vm` (default network: TAP on the kiln bridge)", None),
            ("bare.min", "bare QEMU microvm, minimal busybox initramfs → poweroff (the goal's reference)", None),
            ("bare.disk", "bare QEMU, like for like (kiln's devices, modules, erofs+ext4+overlay, chroot true)", None),
            ("vmm.start", "QEMU start + quit, paused (no guest code)", None),
            ("kiln.ps", "`kiln ps` (CLI start + one API round trip)", None),
            ("kbd.total", "kiln `run --isolation vm` without `--rm` (breakdown runs)", None),
            ("kiln.vm.snap", "kiln `run --rm --network none --isolation vm` **from a snapshot** (`vm-snapshot: true`)", None),
            ("kiln.container", "kiln `run --rm --network none` (container, the snapshot kilnd)", None),
        ],
        "bars": [
            ("kiln.vm", "kiln vm", None), ("kiln.vm.bridge", "kiln vm\\n+bridge", None),
            ("bare.min", "bare QEMU\\nminimal", None),
            ("bare.disk", "bare QEMU\\nlike for like", None), ("vmm.start", "QEMU start\\n(paused)", None),
            ("kiln.ps", "kiln ps", None), ("kiln.vm.snap", "kiln vm\\nsnapshot", None),
            ("kiln.container", "kiln\\ncontainer", None),
        ],
    },
    "pull-unpack": {
        "title": "Pull + unpack: a 6-layer, ~234 MB image from a local registry",
        "unit": "s", "scale": 1.0, "fmt": "{:.2f}",
        "rows": [
            ("kiln.cold.total", "kiln pull + mount (unpack), cold", None),
            ("kiln.cold.pull", "kiln: pull only, cold", None),
            ("kiln.cold.unpack", "kiln: image mount (unpack) only, cold", None),
            ("skopeo+umoci.cold.total", "skopeo copy + umoci unpack, cold", None),
            ("skopeo+umoci.cold.pull", "skopeo copy only, cold", None),
            ("skopeo+umoci.cold.unpack", "umoci unpack only, cold", None),
            ("podman.cold.total", "podman pull (pull + unpack), cold", "podman"),
            ("ctr.cold.total", "ctr image pull (pull + unpack), cold", "ctr"),
            ("kiln.warm.pull", "kiln pull, warm (all blobs present)", None),
            ("skopeo+umoci.warm.pull", "skopeo copy, warm", None),
            ("podman.warm.pull", "podman pull, warm", "podman"),
            ("ctr.warm.pull", "ctr image pull, warm", "ctr"),
            ("tar-xzf.layers", "reference: GNU tar -xzf of the layer blobs, cold", None),
        ],
        "bars": [
            ("kiln.cold.total", "kiln\\ncold", None), ("skopeo+umoci.cold.total", "skopeo+umoci\\ncold", None),
            ("podman.cold.total", "podman\\ncold", "podman"), ("ctr.cold.total", "ctr\\ncold", "ctr"),
            ("tar-xzf.layers", "tar -xzf\\n(reference)", None),
            ("kiln.warm.pull", "kiln\\nwarm", None), ("skopeo+umoci.warm.pull", "skopeo\\nwarm", None),
            ("podman.warm.pull", "podman\\nwarm", "podman"), ("ctr.warm.pull", "ctr\\nwarm", "ctr"),
        ],
    },
    "jvm-start": {
        "title": "JVM start: `kiln --version` and `kiln ps`, with and without the AOT cache",
        "unit": "ms", "scale": 1000.0, "fmt": "{:.0f}",
        "rows": [
            ("kiln.version", "`kiln --version`, AOT cache (target/kiln.aot)", None),
            ("kiln.version_noaot", "`kiln --version`, no AOT cache (`KILN_NO_AOT=1`)", None),
            ("kiln.ps", "`kiln ps` (+ one API round trip, warm kilnd), AOT cache", None),
            ("kiln.ps_noaot", "`kiln ps`, no AOT cache", None),
            ("java", "bare JVM: `java -version` with the CLI's flags (the floor)", None),
        ],
        "bars": [
            ("kiln.version", "--version\\nAOT", None), ("kiln.version_noaot", "--version\\nno AOT", None),
            ("kiln.ps", "ps\\nAOT", None), ("kiln.ps_noaot", "ps\\nno AOT", None), ("java", "java\\n-version", None),
        ],
    },
    "creation-rate": {
        "title": "Creation rate: detached sandboxes (`sleep 3600`) created concurrently",
        "unit": "sandboxes/s", "scale": 1.0, "fmt": "{:.1f}",
        "rows": [
            ("kiln.rate", "kiln `run -d --network none` (container)", "kiln"),
            ("kiln_default.rate", "kiln `run -d` (kiln's default network, when it is not `none`)", "kiln_default"),
            ("podman.rate", "`podman run -d --network none`", "podman"),
            ("runc.rate", "bare `runc run -d` (prepared bundle; the floor)", "runc"),
        ],
        "bars": [
            ("kiln.rate", "kiln\\n--network none", "kiln"), ("kiln_default.rate", "kiln\\ndefault network", "kiln_default"),
            ("podman.rate", "podman\\n--network none", "podman"), ("runc.rate", "bare runc", "runc"),
        ],
    },
    "network": {
        "title": "Network: busybox httpd behind a published port, `ab` from the host over 127.0.0.1",
        "unit": "requests/s", "scale": 1.0, "fmt": "{:.0f}",
        # one row per tool; columns: requests/s (min / median / max), then latency medians (ms)
        "columns": [("rps", "requests/s: min / median / max", "range", "{:.0f}"),
                    ("lat_mean", "mean ms", "median", "{:.2f}"), ("lat_p50", "p50 ms", "median", "{:.2f}"),
                    ("lat_p99", "p99 ms", "median", "{:.2f}"), ("failed", "failed requests (most in a run)", "max", "{:.0f}")],
        "rows": [
            ("kiln.container", "kiln container, `-p H:8080`", "kiln.container"),
            ("kiln.gvisor", "kiln gvisor, `-p H:8080`", "kiln.gvisor"),
            ("kiln.vm", "kiln vm, `-p H:8080`", "kiln.vm"),
            ("podman", "`podman run -d -p H:8080`", "podman"),
            ("host", "busybox httpd on the host (the reference)", "host"),
        ],
        "bars": [
            ("kiln.container.rps", "kiln\\ncontainer", "kiln.container"), ("kiln.gvisor.rps", "kiln\\ngvisor", "kiln.gvisor"),
            ("kiln.vm.rps", "kiln\\nvm", "kiln.vm"), ("podman.rps", "podman", "podman"), ("host.rps", "host httpd", "host"),
        ],
    },
    "density": {
        "title": "Density: host memory per idle sandbox (`sleep 3600`)",
        "unit": "MB per sandbox", "scale": 1.0, "fmt": "{:.1f}",
        "columns": [("avail", "MemAvailable drop − other processes' PSS growth, / N", "median", "{:.1f}"),
                    ("avail_raw", "raw MemAvailable drop / N", "median", "{:.1f}"),
                    ("pss", "PSS of its host processes / N (without `sleep`)", "median", "{:.1f}"),
                    ("pss_all", "PSS / N (with `sleep`)", "median", "{:.1f}"),
                    ("kilnd_growth", "kilnd's PSS growth / N (part of the others)", "median", "{:.1f}")],
        "rows": [
            ("kiln.container", "kiln container (kiln-shim; runc create + start, exited)", "kiln.container"),
            ("kiln.gvisor", "kiln gvisor (kiln-shim + runsc, gofer, sandbox)", "kiln.gvisor"),
            ("kiln.vm", "kiln vm (kiln-shim + VM relay + QEMU)", "kiln.vm"),
            ("podman", "`podman run -d --network none` (conmon)", "podman"),
            ("runc", "bare `runc run -d` (the container's process only)", "runc"),
            ("qemu", "bare QEMU microvm (kiln's flags, /init sleeping)", "qemu"),
        ],
        # bars: MemAvailable drop per sandbox; points: PSS per sandbox (with the workload); log scale (VMs are ~50x)
        "bars": [
            ("kiln.container.avail", "kiln\\ncontainer", "kiln.container"), ("kiln.gvisor.avail", "kiln\\ngvisor", "kiln.gvisor"),
            ("kiln.vm.avail", "kiln\\nvm", "kiln.vm"), ("podman.avail", "podman", "podman"), ("runc.avail", "bare runc", "runc"),
            ("qemu.avail", "bare QEMU\\nmicrovm", "qemu"),
        ],
        "points": (".avail", ".pss_all", "PSS / N (with the workload)"),
        "log": True,
    },
    "volumes": {
        "title": "Volumes: a bind mount per isolation vs the host directory (docs/volumes.md)",
        "unit": "MB/s, s", "scale": 1.0, "fmt": "{:.1f}",
        "columns": [("write", "write MB/s (dd, fsync)", "median", "{:.0f}"), ("read", "read MB/s (dd, cold)", "median", "{:.0f}"),
                    ("untar", "untar s (small files)", "median", "{:.2f}")],
        "rows": [
            ("host", "host directory (the reference)", "host"),
            ("kiln.container", "kiln container (runc bind mount)", "kiln.container"),
            ("kiln.gvisor", "kiln gvisor (runsc's gofer)", "kiln.gvisor"),
            ("kiln.vm", "kiln vm (virtio-fs, virtiofsd cache=none)", "kiln.vm"),
        ],
        "bars": [
            ("host.write", "host", "host"), ("kiln.container.write", "kiln\\ncontainer", "kiln.container"),
            ("kiln.gvisor.write", "kiln\\ngvisor", "kiln.gvisor"), ("kiln.vm.write", "kiln\\nvm", "kiln.vm"),
        ],
    },
    "pod-start": {
        "title": "Pod start through CRI: RunPodSandbox to the first container running",
        "unit": "ms", "scale": 1000.0, "fmt": "{:.0f}",
        "rows": [
            ("runc.pod", "containerd's runc shim (`io.containerd.runc.v2`, handler runc)", None),
            ("kiln.pod", "containerd-shim-kiln-v2, handler kiln (container)", None),
            ("kiln-gvisor.pod", "containerd-shim-kiln-v2, handler kiln-gvisor", None),
            ("kiln-vm.pod", "containerd-shim-kiln-v2, handler kiln-vm (one microVM per pod; TCG here)", None),
        ],
        "bars": [
            ("runc.pod", "runc\\nshim", None), ("kiln.pod", "kiln", None), ("kiln-gvisor.pod", "kiln-gvisor", None),
            ("kiln-vm.pod", "kiln-vm", None),
        ],
    },
    "build": {
        "title": "Build: one Dockerfile (WORKDIR, COPY of a source tree, 3 RUN steps), cold and cached",
        "unit": "s", "scale": 1.0, "fmt": "{:.2f}",
        "rows": [
            ("kiln.cold", "kiln build --no-cache (container: runc)", None),
            ("podman.cold", "podman build --no-cache (buildah, runc)", "podman"),
            ("kiln.cached", "kiln build, rebuild with nothing changed", None),
            ("podman.cached", "podman build, rebuild with nothing changed", "podman"),
            ("kiln.vm.cold", "kiln build --isolation vm --no-cache", "kiln.vm"),
        ],
        "bars": [
            ("kiln.cold", "kiln\\ncold", None), ("podman.cold", "podman\\ncold", "podman"),
            ("kiln.cached", "kiln\\ncached", None), ("podman.cached", "podman\\ncached", "podman"),
            ("kiln.vm.cold", "kiln vm\\ncold", "kiln.vm"),
        ],
    },
}
# the order bench/run runs them in
ORDER = ["run-latency", "jvm-start", "creation-rate", "network", "vm-boot", "density", "pull-unpack", "volumes",
         "pod-start", "build"]
benches = {n: Bench(n) for n in ORDER}
rl, vm, pu = benches["run-latency"], benches["vm-boot"], benches["pull-unpack"]
js, cr, nw, de = benches["jvm-start"], benches["creation-rate"], benches["network"], benches["density"]


def verdict(ok):
    return "**met**" if ok else "**NOT met**"


# The goals of issue 7, from the medians of this run. Each: (goal, kiln, reference, result, bench, kiln key, mark)
# where mark is the goal's level on kiln's bar in the chart (in the bench's unit), or None.
goals = []
kc, pc = rl.median("kiln.container", 1000), rl.median("podman", 1000)
if kc is not None and pc is not None:
    goals.append(("container run ≤ podman (`run --rm --network none IMG true`)", f"{kc:.0f} ms", f"podman {pc:.0f} ms",
                  f"{kc / pc:.2f}× podman ({kc - pc:+.0f} ms): {verdict(kc <= pc)}", "run-latency", "kiln.container", pc))
else:
    goals.append(("container run ≤ podman (`run --rm IMG true`)", "–" if kc is None else f"{kc:.0f} ms", "–",
                  rl.why_missing("podman" if kc is not None else None), None, None, None))
kg, rs = rl.median("kiln.gvisor", 1000), rl.median("runsc", 1000)
if kg is not None and rs is not None:
    goals.append(("gVisor ≤ bare runsc + 150 ms", f"{kg:.0f} ms", f"runsc {rs:.0f} ms",
                  f"bare runsc {kg - rs:+.0f} ms (goal +150 ms): {verdict(kg <= rs + 150)}", "run-latency", "kiln.gvisor", rs + 150))
else:
    goals.append(("gVisor ≤ bare runsc + 150 ms", "–" if kg is None else f"{kg:.0f} ms", "–",
                  rl.why_missing("runsc" if kg is not None else None), None, None, None))
kv, bm = vm.median("kiln.vm", 1000), vm.median("bare.min", 1000)
if kv is not None and bm is not None:
    goals.append(("vm ≤ 1.15× bare QEMU microvm", f"{kv:.0f} ms", f"bare QEMU {bm:.0f} ms",
                  f"{kv / bm:.2f}× ({kv - bm:+.0f} ms): {verdict(kv <= 1.15 * bm)}", "vm-boot", "kiln.vm", 1.15 * bm))
else:
    goals.append(("vm ≤ 1.15× bare QEMU microvm", "–", "–", vm.why_missing(None), None, None, None))
ks, kc2 = vm.median("kiln.vm.snap", 1000), vm.median("kiln.container", 1000)
if ks is not None and bm is not None:
    goals.append(("vm from a snapshot ≤ 0.25× bare QEMU cold boot (issue 17)", f"{ks:.0f} ms", f"bare QEMU {bm:.0f} ms",
                  f"{ks / bm:.2f}× ({ks - bm:+.0f} ms): {verdict(ks <= 0.25 * bm)}", "vm-boot", "kiln.vm.snap", 0.25 * bm))
if ks is not None and kc2 is not None:
    goals.append(("vm run (snapshot) ≤ 2× container run (issue 17)", f"{ks:.0f} ms", f"container {kc2:.0f} ms",
                  f"{ks / kc2:.2f}×: {verdict(ks <= 2 * kc2)}", "vm-boot", "kiln.vm.snap", 2 * kc2))
kp, su = pu.median("kiln.cold.total"), pu.median("skopeo+umoci.cold.total")
if kp is not None and su is not None:
    goals.append(("pull + unpack ≥ 1.5× faster than skopeo + umoci (cold)", f"{kp:.2f} s", f"skopeo+umoci {su:.2f} s",
                  f"{su / kp:.2f}× faster: {verdict(su / kp >= 1.5)}", "pull-unpack", "kiln.cold.total", su / 1.5))
else:
    goals.append(("pull + unpack ≥ 1.5× faster than skopeo + umoci (cold)", "–", "–", pu.why_missing(None),
                  None, None, None))
da, dp = de.median("kiln.container.avail"), de.median("kiln.container.pss_all")
if da is not None:
    goals.append(("memory per idle container sandbox ≤ 6 MB", f"{da:.1f} MB (PSS {dp:.1f} MB)",
                  f"podman {de.median('podman.avail'):.1f} MB (PSS {de.median('podman.pss_all'):.1f} MB)"
                  if de.median("podman.avail") is not None else de.why_missing("podman"),
                  (f"MemAvailable drop per sandbox, other processes' growth taken out: {verdict(da <= 6)}"
                   if da >= 0 or dp is None else
                   f"the MemAvailable drop was not measurable in this run (other work moved it more than the "
                   f"sandboxes did), so judged by the PSS of kiln's per-sandbox processes ({dp:.1f} MB; kernel "
                   f"memory such as cgroups and mounts is not in it): {verdict(dp <= 6)}")
                  + (f" (noisy: bare `runc run -d`, whose own PSS is {de.median('runc.pss_all'):.1f} MB, measured "
                     f"{de.median('runc.avail'):.1f} MB in the same run; N = {de.meta.get('n', '?')})"
                     if de.median("runc.avail") is not None and de.median("runc.pss_all") is not None else ""),
                  "density", "kiln.container.avail", 6.0))
else:
    goals.append(("memory per idle container sandbox ≤ 6 MB", "–", "–", de.why_missing("kiln.container"),
                  None, None, None))

# The goals of issues 14, 16 and 17, read the same way: (goal, bench, kiln key, reference key, reference's name,
# limit as a ratio kiln/reference, or an absolute limit when the reference key is None; scale; unit; higher is better)
LATER_GOALS = [
    ("CRI pod start, handler kiln ≤ 1.2× containerd's runc shim (issue 14)", "pod-start", "kiln.pod", "runc.pod",
     "runc shim", 1.2, 1000, "ms", False),
    ("build cold ≤ 1.0× podman build (issue 16)", "build", "kiln.cold", "podman.cold", "podman", 1.0, 1, "s", False),
    ("build cached ≤ 1.0× podman build (issue 16)", "build", "kiln.cached", "podman.cached", "podman", 1.0, 1, "s",
     False),
    ("`kiln --version` ≤ 70 ms (issue 17)", "jvm-start", "kiln.version", None, None, 70, 1000, "ms", False),
    ("`kiln ps` ≤ 70 ms (issue 17)", "jvm-start", "kiln.ps", None, None, 70, 1000, "ms", False),
    ("10 detached creates at once: rate ≥ 1.0× podman (issue 17)", "creation-rate", "kiln.rate", "podman.rate",
     "podman", 1.0, 1, "/s", True),
    ("PSS per idle container sandbox ≤ 1.5× podman (issue 17)", "density", "kiln.container.pss_all",
     "podman.pss_all", "podman", 1.5, 1, "MB", False),
]
if benches["pod-start"].median("kiln-vm.pod") is not None:
    LATER_GOALS.insert(1, ("CRI pod start, handler kiln-vm ≤ 1.2× `kiln run --isolation vm` (issue 14)", "pod-start",
                           "kiln-vm.pod", None, None, None, 1000, "ms", False))
for label, bname, key, ref, ref_name, limit, scale, unit, higher in LATER_GOALS:
    b = benches[bname]
    k = b.median(key, scale)
    fmt = "{:.2f}" if unit == "s" else "{:.1f}" if unit in ("/s", "MB") else "{:.0f}"
    if k is None:
        goals.append((label, "–", "–", b.why_missing(None), None, None, None))
        continue
    if limit is None:  # kiln-vm pods against kiln's own vm run (vm-boot's kiln.vm)
        r = vm.median("kiln.vm", 1000)
        if r is None:
            goals.append((label, fmt.format(k) + " " + unit, "–", vm.why_missing(None), None, None, None))
            continue
        goals.append((label, fmt.format(k) + " " + unit, f"kiln vm run {r:.0f} ms",
                      f"{k / r:.2f}×: {verdict(k <= 1.2 * r)}", bname, key, 1.2 * r))
    elif ref is None:
        goals.append((label, fmt.format(k) + " " + unit, "–",
                      f"{verdict(k >= limit if higher else k <= limit)} (goal {limit} {unit})", bname, key, limit))
    else:
        r = b.median(ref, scale)
        if r is None:
            goals.append((label, fmt.format(k) + " " + unit, "–", b.why_missing(ref.split(".")[0]), None, None,
                          None))
            continue
        ratio = k / r
        ok = ratio >= limit if higher else ratio <= limit
        goals.append((label, fmt.format(k) + " " + unit, f"{ref_name} {fmt.format(r)} {unit}",
                      f"{ratio:.2f}× {ref_name}: {verdict(ok)}", bname, key, r * limit))

date, host = suite.get("date", "unknown-date"), suite.get("host", "unknown-host")
ran = [n for n in ORDER if n in suite.get("benchmarks", "").split(",")]
# a subset (bench/run --only) gets a report and charts of its own: the day's suite report stays the record
base = f"{date}-{host}" if len(ran) == len(ORDER) else f"{date}-{host}-only-" + "-".join(ran)
os.makedirs(results_dir, exist_ok=True)


# ---------------------------------------------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------------------------------------------
def gp_str(s):
    return '"' + s.replace('"', "'") + '"'


def draw(name, b, spec):
    """One PNG per benchmark; returns (file name, None) or (None, why not)."""
    bars = [(k, label, peer, b.stats(k, spec["scale"])) for k, label, peer in spec["bars"]]
    if not any(s for *_, s in bars):
        return None, "no samples"
    png = f"{base}-{name}.png"
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        missing = os.path.join(tmp, "missing")
        log = spec.get("log", False)
        pts = spec.get("points")  # (bar key suffix, point key suffix, title): a second figure per tool, as a point
        pvals = {}
        if pts:
            for i, (k, *_r) in enumerate(bars):
                v = b.median(k[: -len(pts[0])] + pts[1], spec["scale"]) if k.endswith(pts[0]) else None
                if v is not None:
                    pvals[i] = v
        top = max([s[2] for *_, s in bars if s] + list(pvals.values()))
        marks = [(g[5], g[6]) for g in goals if g[4] == name and g[6] is not None
                 and any(k == g[5] for k, *_r in bars)]  # a goal on a figure that has no bar gets no mark
        top = max([top] + [m[1] for m in marks])
        # a log scale cannot show zero or negative values (noise in a difference): those bars sit at the floor,
        # labelled with their real value
        floor = 0.1
        used = set()
        with open(data, "w") as f, open(missing, "w") as m:
            for i, (k, label, peer, s) in enumerate(bars):
                color = 1 if k.startswith("kiln") else (3 if k.startswith(("bare", "runc", "runsc", "vmm", "tar", "java", "host", "qemu")) else 2)
                used.add(color)
                if s:
                    lo, md, hi = (max(x, floor) for x in s[:3]) if log else s[:3]
                    f.write(f"{i}\t{lo}\t{md}\t{hi}\t{color}\t{gp_str(spec['fmt'].format(s[1]))}\n")
                else:
                    m.write(f"{i}\t{floor * 2 if log else top * 0.06}\t\"not\\navailable\"\n")
        if pvals:
            with open(os.path.join(tmp, "points"), "w") as p:
                for i, v in pvals.items():
                    p.write(f"{i}\t{max(v, floor) if log else v}\n")
        tics = ", ".join(f'"{label}" {i}' for i, (k, label, *_r) in enumerate(bars))
        lines = [
            "set terminal pngcairo size 1000,560 font 'DejaVu Sans,10'",
            f"set output {gp_str(os.path.join(results_dir, png))}",
            f"set title {gp_str(spec['chart_title'] + ' (' + date + ', ' + host + ')')} font ',12'",
            f"set ylabel {gp_str(spec['unit'] + (' (bar: median; whiskers: min to max' + (', log scale)' if log else ')')))}",
            f"set xtics ({tics}) scale 0",
            f"set xrange [-0.6:{len(bars) - 0.4}]",
            f"set yrange [{floor}:{top * 12}]" if log else f"set yrange [0:{top * 1.15}]",
            "set logscale y" if log else "unset logscale y",
            "set grid ytics lc rgb '#dddddd'",
            "set style fill solid 0.8 border -1",
            "set boxwidth 0.6",
            "set bmargin 4",
            "set key top right",
            "set linetype 11 lc rgb '#d9731a'",  # kiln
            "set linetype 12 lc rgb '#4a7ebb'",  # peers
            "set linetype 13 lc rgb '#9a9a9a'",  # bare runtimes / references
        ]
        for key, level in marks:
            idx = next(i for i, (k, *_r) in enumerate(bars) if k == key)
            lines.append(f"set arrow from {idx - 0.42},{level} to {idx + 0.42},{level} nohead lw 3 lc rgb '#d00000' front")
            lines.append(f"set label 'goal' at {idx - 0.40},{level} left offset 0,0.7 tc rgb '#d00000' front")
        plot = [
            f"{gp_str(data)} using 1:3:($5+10) with boxes lc variable notitle",
            f"{gp_str(data)} using 1:3:2:4 with yerrorbars pt 7 ps 0 lw 1.5 lc rgb 'black' notitle",
            f"{gp_str(data)} using 1:4:6 with labels offset 0,0.8 notitle",
        ]
        if pvals:
            plot.append(f"{gp_str(os.path.join(tmp, 'points'))} using 1:2 with points pt 9 ps 2 lc rgb '#202020' "
                        f"title {gp_str(pts[2])}")
        if os.path.getsize(missing):
            plot.append(f"{gp_str(missing)} using 1:2:3 with labels tc rgb '#888888' notitle")
        # legend entries for the colours, drawn off-range
        plot += [f"NaN with boxes lt {10 + c} title '{t}'" for c, t in
                 ((1, "kiln"), (2, "peer"), (3, "bare runtime / reference")) if c in used]
        lines.append("plot " + ", \\\n     ".join(plot))
        script = os.path.join(tmp, "chart.gp")
        open(script, "w").write("\n".join(lines) + "\n")
        r = subprocess.run(["gnuplot", script], capture_output=True, text=True)
        if r.returncode != 0:
            return None, "gnuplot failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return png, None


BENCHES["run-latency"]["chart_title"] = "run --rm IMAGE true"
BENCHES["vm-boot"]["chart_title"] = "run --rm --isolation vm IMAGE true vs bare QEMU microvm"
BENCHES["pull-unpack"]["chart_title"] = "pull + unpack of a 6-layer, 234 MB image (cold) and warm pull"
BENCHES["build"]["chart_title"] = "build of one Dockerfile: kiln vs podman build, cold and cached; kiln vm beside"
BENCHES["jvm-start"]["chart_title"] = "kiln CLI start: --version and ps, with and without the AOT cache"
BENCHES["creation-rate"]["chart_title"] = "detached sandboxes created concurrently, per second (higher is better)"
BENCHES["network"]["chart_title"] = "requests/s to busybox httpd behind a published port (higher is better)"
BENCHES["density"]["chart_title"] = "host memory per idle sandbox: MemAvailable drop per sandbox (bars), PSS (points)"
BENCHES["volumes"]["chart_title"] = "sequential write to a bind mount, MB/s (higher is better)"
BENCHES["pod-start"]["chart_title"] = "CRI RunPodSandbox to the first container running (lower is better)"

charts, no_charts = {}, None
if shutil.which("gnuplot") is None:
    no_charts = "charts not drawn: gnuplot missing (apt-get install gnuplot-nox)"
    print("bench/run: " + no_charts, file=sys.stderr)
else:
    for n in ORDER:
        if benches[n].has_data:
            charts[n] = draw(n, benches[n], BENCHES[n])

# ---------------------------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------------------------
out = []
w = out.append
mode = suite.get("mode", "?")
w(f"# kiln benchmarks: {date}, {host} ({mode} run)")
w("")
w(f"Command: `{suite.get('command', '?')}` (from the repository root, as root); started {suite.get('started', '?')}, "
  f"took {int(suite.get('seconds', '0')) // 60} min {int(suite.get('seconds', '0')) % 60} s. "
  "Benchmarks: " + ", ".join(f"`{suite[n + '.command']}` ({suite.get(n + '.seconds', '?')} s)"
                             for n in ORDER if n + ".command" in suite) + ".")
w("Each figure is min / median / max over the runs of one benchmark; the tools take turns within every run, so "
  "compare figures of the same run only. Ratios compare medians. Benchmarks assert nothing (bench/README.md).")
w("")
w("## Machine")
w("")
accel = vm.meta.get("accel")
if accel == "tcg":
    kvm = f"no usable KVM: `/dev/kvm` {suite.get('dev_kvm', '?')}, kiln's probe chose TCG (`-accel tcg`; docs/vm.md)"
elif accel == "kvm":
    kvm = "KVM usable (kiln's probe chose `-accel kvm`)"
else:
    kvm = f"`/dev/kvm` {suite.get('dev_kvm', '?')}; kiln's probe result unknown (vm-boot did not run)"
w(f"- {suite.get('cores', '?')} cores ({suite.get('cpu', '?')}), {int(suite.get('memory_mb', '0')) / 1024:.1f} GiB "
  f"memory ({int(suite.get('mem_available_mb', '0')) / 1024:.1f} GiB available at the start)")
w(f"- kernel {suite.get('kernel', '?')}, {suite.get('os', '?')}; {kvm}")
w(f"- kiln {suite.get('kiln', '?')} (jar built {suite.get('jar_built', '?')}; the benchmarks run a snapshot of it, "
  f"AOT cache: {rl.meta.get('aot') or vm.meta.get('aot') or suite.get('aot') or '?'}); {suite.get('java', '?')}")
loads = [f"suite start {suite.get('load_start', '?')}, end {suite.get('load_end', '?')}"]
for n in ORDER:
    b = benches[n]
    if "load_before" in b.meta:
        loads.append(f"{n} before/after its runs {b.meta['load_before']} / {b.meta.get('load_after', '?')}")
w("- load average (1/5/15 min): " + "; ".join(loads) + ". Other work on the machine (other engineers' builds and "
  "tests) shows up as noise, most in the CPU-bound, JVM-heavy rows.")
w("")
w("## Goals (issues 7, 14, 16, 17)")
w("")
w("| goal | kiln (median) | reference (median) | result |")
w("|---|---:|---:|---|")
for g in goals:
    w(f"| {g[0]} | {g[1]} | {g[2]} | {g[3]} |")
w("")


# Other figures of issue 7 that have no goal: one line each (bench/readme-section copies this table too)
def fig(b, key, fmt, unit, peer=None, scale=1.0):
    v = b.median(key, scale)
    return f"{fmt.format(v)} {unit}" if v is not None else b.why_missing(peer or key.rsplit(".", 1)[0])


def ratio_of(b, a, c, higher_better):
    x, y = b.median(a), b.median(c)
    if x is None or y is None or x <= 0 or y <= 0:
        return "–"
    r = x / y
    return f"{r:.2f}×"


figures = [
    (f"creation rate: {cr.meta.get('n', '?')} detached sandboxes created at once", fig(cr, "kiln.rate", "{:.1f}", "/s", "kiln"),
     "podman " + fig(cr, "podman.rate", "{:.1f}", "/s", "podman"),
     f"kiln at {ratio_of(cr, 'kiln.rate', 'podman.rate', True)} podman's rate"),
    ("creation rate: kiln with its default network (when not `none`)", fig(cr, "kiln_default.rate", "{:.1f}", "/s", "kiln_default"),
     "podman " + fig(cr, "podman.rate", "{:.1f}", "/s", "podman") + " (`--network none`)",
     f"{ratio_of(cr, 'kiln_default.rate', 'podman.rate', True)} podman's rate"),
    ("network: requests/s to a published port (container)", fig(nw, "kiln.container.rps", "{:.0f}", "req/s"),
     "host httpd " + fig(nw, "host.rps", "{:.0f}", "req/s"),
     f"{ratio_of(nw, 'kiln.container.rps', 'host.rps', True)} the host's; p99 "
     + fig(nw, "kiln.container.lat_p99", "{:.2f}", "ms") + " vs " + fig(nw, "host.lat_p99", "{:.2f}", "ms")),
    ("network: gvisor / vm behind a published port",
     fig(nw, "kiln.gvisor.rps", "{:.0f}", "req/s").split(" (use ")[0] + " / "
     + fig(nw, "kiln.vm.rps", "{:.0f}", "req/s").split(" (use ")[0], "", ""),
    ("JVM start: `kiln --version`, AOT cache / none", fig(js, "kiln.version", "{:.0f}", "ms", "kiln", scale=1000),
     "no AOT " + fig(js, "kiln.version_noaot", "{:.0f}", "ms", "kiln", scale=1000),
     f"{ratio_of(js, 'kiln.version', 'kiln.version_noaot', False)} (bare JVM " + fig(js, "java", "{:.0f}", "ms", None, 1000) + ")"),
    ("JVM start: `kiln ps`, AOT cache / none", fig(js, "kiln.ps", "{:.0f}", "ms", "kiln", scale=1000),
     "no AOT " + fig(js, "kiln.ps_noaot", "{:.0f}", "ms", "kiln", scale=1000),
     f"{ratio_of(js, 'kiln.ps', 'kiln.ps_noaot', False)}"),
    ("memory per idle gvisor sandbox (MemAvailable; PSS)", fig(de, "kiln.gvisor.avail", "{:.1f}", "MB")
     + (f" (PSS {de.median('kiln.gvisor.pss_all'):.1f} MB)" if de.median("kiln.gvisor.pss_all") is not None else ""),
     "–", ""),
    ("memory per idle vm sandbox (MemAvailable; PSS)", fig(de, "kiln.vm.avail", "{:.1f}", "MB")
     + (f" (PSS {de.median('kiln.vm.pss_all'):.1f} MB)" if de.median("kiln.vm.pss_all") is not None else ""),
     "bare QEMU " + fig(de, "qemu.avail", "{:.1f}", "MB", "qemu")
     + (f" (PSS {de.median('qemu.pss_all'):.1f} MB)" if de.median("qemu.pss_all") is not None else ""), ""),
]
w("## Other figures (no goal)")
w("")
w("| figure | kiln (median) | reference (median) | ratio |")
w("|---|---:|---:|---|")
for f_ in figures:
    w(f"| {f_[0]} | {f_[1]} | {f_[2]} | {f_[3]} |")
w("")


def section(n, b, spec):
    w(f"## {spec['title']}")
    w("")
    if not b.ran:
        w(f"Not run (`--only` left it out).")
        w("")
        return
    if b.failure:
        w(f"**The benchmark failed: {b.failure}.** Its log: `bench/.cache/last/{n}.log` (until the next run); "
          "the other benchmarks' figures stand.")
        w("")
    if not b.has_data:
        if not b.failure:
            w(f"No samples: {b.why_missing(None)}.")
            w("")
        return
    u = spec["unit"]
    runs = b.meta.get("runs", "?")
    if "columns" in spec:
        # one row per tool, one column per metric (KEY.METRIC): a min / median / max range or the median
        cols = spec["columns"]
        what = f"{runs} run{'s' if runs != '1' else ''}"
        if n == "density":
            what = f"N = {b.meta.get('n', '?')}, {b.meta.get('n_vm', '?')} for VMs"
        w(f"| {u} ({what}) | " + " | ".join(c[1] for c in cols) + " |")
        w("|---|" + "---:|" * len(cols))
        for k, label, peer in spec["rows"]:
            cells = []
            for metric, _h, kind, f in cols:
                s = b.stats(k + "." + metric, spec["scale"])
                if not s:
                    cells.append("")
                elif kind == "max":
                    cells.append(f.format(s[2]))
                elif kind == "range":
                    cells.append(f"{f.format(s[0])} / **{f.format(s[1])}** / {f.format(s[2])}")
                else:
                    cells.append(f.format(s[1]))
            if any(cells):
                w(f"| {label} | " + " | ".join(cells) + " |")
            else:
                w(f"| {label} | {b.why_missing(peer)} |" + " |" * (len(cols) - 1))
        w("")
    else:
        w(f"| {u} ({runs} run{'s' if runs != '1' else ''}) | min | median | max |")
        w("|---|---:|---:|---:|")
        for k, label, peer in spec["rows"]:
            s = b.stats(k, spec["scale"])
            if s:
                f = spec["fmt"]
                w(f"| {label} | {f.format(s[0])} | {f.format(s[1])} | {f.format(s[2])} |")
            elif peer or b.failure:
                w(f"| {label} | {b.why_missing(peer)} | | |")
        w("")
    for peer, why in sorted(b.status.items()):
        w(f"- {peer}: {why if why.startswith('not available') else 'not available: ' + why}")
    extra = {"run-latency": [("kiln container vs ctr", "kiln.container", "ctr"),
                             ("kiln container vs bare runc", "kiln.container", "runc"),
                             ("kiln gvisor vs bare runsc", "kiln.gvisor", "runsc"),
                             ("kiln --version, AOT cache vs none", "kiln.version", "kiln.version.noaot")],
             "vm-boot": [("kiln vm vs bare QEMU like for like", "kiln.vm", "bare.disk"),
                         ("kiln vm from a snapshot vs kiln vm boot", "kiln.vm.snap", "kiln.vm"),
                         ("bare like for like vs bare minimal", "bare.disk", "bare.min")],
             "pull-unpack": [("kiln vs podman, cold", "kiln.cold.total", "podman.cold.total"),
                             ("kiln vs ctr, cold", "kiln.cold.total", "ctr.cold.total"),
                             ("kiln unpack vs umoci unpack", "kiln.cold.unpack", "skopeo+umoci.cold.unpack"),
                             ("kiln pull vs skopeo copy, cold", "kiln.cold.pull", "skopeo+umoci.cold.pull"),
                             ("kiln vs skopeo, warm pull", "kiln.warm.pull", "skopeo+umoci.warm.pull")],
             "build": [("kiln vs podman, cold", "kiln.cold", "podman.cold"),
                       ("kiln vs podman, cached", "kiln.cached", "podman.cached"),
                       ("kiln vm vs kiln container, cold", "kiln.vm.cold", "kiln.cold")],
             "jvm-start": [("kiln --version, AOT cache vs none", "kiln.version", "kiln.version_noaot"),
                           ("kiln ps, AOT cache vs none", "kiln.ps", "kiln.ps_noaot"),
                           ("kiln --version vs the bare JVM", "kiln.version", "java")],
             # rates and requests/s: higher is better, so the ratios are read the other way round
             "creation-rate": [("kiln vs podman", "kiln.rate", "podman.rate"),
                               ("kiln vs bare runc", "kiln.rate", "runc.rate")],
             "network": [("kiln container vs the host's httpd", "kiln.container.rps", "host.rps"),
                         ("podman vs the host's httpd", "podman.rps", "host.rps")],
             "density": [],
             # untar seconds: lower is better, read as "slower/faster" than the host directory
             "volumes": [("kiln vm untar vs the host directory", "kiln.vm.untar", "host.untar"),
                         ("kiln gvisor untar vs the host directory", "kiln.gvisor.untar", "host.untar")],
             "pod-start": [("kiln handler vs containerd's runc shim", "kiln.pod", "runc.pod")]}[n]
    for label, k, p in extra:
        a, c = b.median(k, spec["scale"]), b.median(p, spec["scale"])
        if a is not None and c is not None and c > 0 and n in ("creation-rate", "network"):
            # rates: higher is better
            if a >= c:
                w(f"- {label}: {a / c:.2f}× the rate (+{spec['fmt'].format(a - c)} {u})")
            else:
                w(f"- {label}: {a / c:.2f}× the rate, {c / a:.2f}× lower (−{spec['fmt'].format(c - a)} {u})")
        elif a is not None and c is not None and c > 0:
            if a > c:
                w(f"- {label}: {a / c:.2f}× slower (+{spec['fmt'].format(a - c)} {u})")
            else:
                w(f"- {label}: {c / a:.2f}× faster (−{spec['fmt'].format(c - a)} {u})")
    if n == "run-latency" and "kilnd_rss_mb" in b.meta:
        w(f"- kilnd RSS after the runs: {b.meta['kilnd_rss_mb']} MB")
    if n == "vm-boot" and "kernel" in b.meta:
        k = b.meta["kernel"]
        if "/kernels/" in k:  # kiln's kernel cache in the benchmark's temporary root
            k = "kiln's kernel cache: " + k.split("/kernels/", 1)[1]
        w(f"- guest kernel {k}, accel {b.meta.get('accel', '?')}, {b.meta.get('qemu', '?')}")
    if n == "creation-rate" and "n" in b.meta:
        w(f"- {b.meta['n']} sandboxes at once per round; kiln's default network: {b.meta.get('default_network', '?')}"
          + (" (so the `--network none` row is also kiln's default)" if b.meta.get("default_network") == "none"
             else " (the second kiln row)"))
    if n == "network" and "requests" in b.meta:
        w(f"- `ab -n {b.meta['requests']} -c {b.meta.get('concurrency', '?')}` per run, a 1 KiB file, a new connection "
          "per request (busybox httpd does not keep connections alive)")
    if n == "density" and "n" in b.meta:
        w(f"- kilnd, a fixed cost not counted per sandbox: PSS {b.meta.get('kilnd_pss_mb', '?')} MB at the end "
          f"({b.meta.get('kilnd_pss_with_mb', '?')} MB with the last kiln sandboxes running); page cache dropped "
          f"before each MemAvailable reading: {b.meta.get('drop_caches', '?')}; settle {b.meta.get('settle', '?')} s. "
          "MemAvailable moves with everything else on the machine: the growth of every other process's PSS "
          "(kilnd, other engineers' builds) is taken out, but their kernel memory and page cache are not, so with "
          "small N a difference of a few MB per sandbox, even a negative one, is noise; the PSS columns are exact "
          "but leave out kernel memory (namespaces, cgroups, mounts, page tables).")
    if n == "pull-unpack" and "image" in b.meta:
        w(f"- image: {b.meta['image']}; page cache dropped before cold runs: {b.meta.get('drop_caches', '?')}")
    w("")
    if no_charts:
        w(f"({no_charts})")
    elif n in charts and charts[n][0]:
        w(f"![{n}]({charts[n][0]})")
    elif n in charts:
        w(f"(chart not drawn: {charts[n][1]})")
    w("")
    own = os.path.join(samples_dir, b.meta.get("report", "-"))
    if os.path.isfile(own):
        # the benchmark's own report (exact commands, versions, breakdowns), its headings demoted below this one
        w(f"<details><summary>bench/{n}'s own report (exact commands, versions, breakdown)</summary>")
        w("")
        for line in open(own, encoding="utf-8").read().rstrip("\n").splitlines():
            w("###" + line[1:] if line.startswith("# ") else line)
        w("")
        w("</details>")
        w("")


for n in ORDER:
    section(n, benches[n], BENCHES[n])

w("## Not measured yet")
w("")
w("Issue 7's list is covered by the benchmarks above. Not measured: gvisor and vm behind a published port while kiln "
  "refuses `-p` for them (the network table says so), and a `kiln ps`-free JVM start of kilnd itself.")
w("")

report = os.path.join(results_dir, base + ".md")
open(report + ".tmp", "w", encoding="utf-8").write("\n".join(out))
os.replace(report + ".tmp", report)
print("\n".join(out))
print(f"bench/run: report written to {os.path.relpath(report)}"
      + "".join(f"\nbench/run: chart {os.path.join(os.path.relpath(results_dir), c[0])}" for c in charts.values() if c[0]),
      file=sys.stderr)
