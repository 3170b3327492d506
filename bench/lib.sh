# Shared by the benchmarks (sourced, not run): the kiln snapshot with its own AOT cache, the busybox image, a
# private kilnd, podman's configuration, and the clean-up of what they leave. Before sourcing, a benchmark sets
#   here, repo   bench/ and the repository root
#   work         its temporary directory (/var/tmp/kiln-bench-*.XXXXXX), removed by its EXIT trap
#   step_timeout the bound of every single step, in seconds
#   bench_name   its name, for messages
#   need_kiln_init  (optional) 1 when the snapshot must hold native/kiln-init too (VMs)
# and gets kiln (the snapshot's launcher), kroot/krun (kiln's private --root/--run-root), kiln_cmd, podman_cmd.

kiln_home="${KILN_BENCH_HOME:-$work/kiln-build}"   # bench/run makes one snapshot for its whole suite
kiln="$kiln_home/bin/kiln"
kroot="$work/kiln/root"
krun="$work/kiln/run"
kiln_cmd=("$kiln" --root "$kroot" --run-root "$krun")
java_home="${KILN_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"   # the JDK bin/kiln picks on these machines
podman_cmd=(env CONTAINERS_CONF="$work/containers.conf" podman --root "$work/podman/root" --runroot "$work/podman/run"
            --tmpdir "$work/podman/tmp")

log() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
# why LOG...: the last meaningful line of the logs, for "not available: ..."
why() { cat "$@" 2>/dev/null | grep -v '^\s*$' | tail -1 | cut -c1-200; }
# version CMD...: the first line CMD prints, or "no CMD" (sed, not head: no SIGPIPE for pipefail to see)
version() { command -v "$1" >/dev/null && "$@" 2>/dev/null | sed -n 1p || echo "no $1"; }
kiln_rev() {
  echo "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
}

# kill_pid PID: TERM, then KILL after 5 s; only ever the processes the benchmark started
kill_pid() {
  local pid="$1"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# snapshot_kiln: a copy of bin/kiln and target/ (jar, lib/, native/kiln-shim + kiln-init) in $kiln_home, because
# others rebuild target/ while they work and a jar replaced under a running kilnd breaks it. Then its own AOT caches
# (the CLI's and kilnd's), trained by scripts/aot-cache (the JVM ties a cache to the jar's path and time); sets $aot to "in use" or why
# not (checked with -XX:AOTMode=on, which turns an unusable cache into an error).
jar_ok() { python3 -c 'import sys, zipfile; sys.exit(zipfile.ZipFile(sys.argv[1]).testzip() is not None)' "$1" 2>/dev/null; }
snapshot_kiln() {
  local jar="$repo/target/kiln-0.1.0.jar" stamp ok=0
  if [ -n "${KILN_BENCH_HOME:-}" ]; then   # the suite's, made and trained by bench/run
    aot="$(cat "$KILN_BENCH_HOME/../aot")"
    log "kiln: the suite's snapshot of the build from $(date -r "$kiln_home/target/kiln-0.1.0.jar" '+%F %H:%M:%S'); AOT cache $aot"
    return 0
  fi
  for _ in $(seq 90); do   # a build in progress: wait (up to 3 min) for a complete jar
    stamp="$(stat -c %Y "$jar" 2>/dev/null || true)"
    if [ -n "$stamp" ] && [ -x "$repo/target/native/kiln-shim" ] && jar_ok "$jar" \
       && { [ -z "${need_kiln_init:-}" ] || [ -f "$repo/target/native/kiln-init" ]; }; then
      rm -rf "$kiln_home"; mkdir -p "$kiln_home/bin" "$kiln_home/target"
      cp -p "$repo/bin/kiln" "$kiln_home/bin/"
      cp -pr "$jar" "$repo/target/lib" "$repo/target/native" "$kiln_home/target/"
      if [ "$(stat -c %Y "$jar" 2>/dev/null)" = "$stamp" ] && jar_ok "$kiln_home/target/kiln-0.1.0.jar"; then ok=1; break; fi
    fi
    sleep 2
  done
  [ "$ok" = 1 ] || { log "$bench_name: no complete kiln build in target/ (run scripts/setup)"; return 1; }
  aot="in use"
  # every cache scripts/setup makes for a user (the CLI's two, kilnd's), trained by the same script on the snapshot
  if ! KILN_JAVA_HOME="$java_home" timeout "$((3 * step_timeout))" "$repo/scripts/aot-cache" "$kiln_home" \
       >"$work/aot.log" 2>&1 || [ ! -f "$kiln_home/target/kiln.aot" ]; then
    aot="NOT built ($(tail -1 "$work/aot.log"))"
  elif [ ! -f "$kiln_home/target/kilnd.aot" ]; then
    aot="of the CLI in use, kilnd's NOT built ($(tail -1 "$work/aot.log"))"
  # the launcher silences the JVM's AOT messages; AOTMode=on makes an unusable cache an error instead
  elif ! "$java_home/bin/java" -XX:AOTCache="$kiln_home/target/kiln.aot" -XX:AOTMode=on -XX:TieredStopAtLevel=1 \
         -XX:+UseSerialGC --enable-native-access=ALL-UNNAMED -cp "$kiln_home/target/kiln-0.1.0.jar" dev.kiln.cli.Main \
         --version >"$work/aot.log" 2>&1; then
    aot="NOT usable ($(grep . "$work/aot.log" | tail -1))"
  fi
  log "kiln: snapshot of the build from $(date -r "$kiln_home/target/kiln-0.1.0.jar" '+%F %H:%M:%S'); AOT cache $aot"
}

# busybox_rootfs DIR LINK...: the host's static busybox as DIR/bin/busybox plus the named links
busybox_rootfs() {
  local dir="$1" l; shift
  mkdir -p "$dir/bin"
  cp "$(readlink -f "$(command -v busybox)")" "$dir/bin/busybox"
  for l in "$@"; do ln -s busybox "$dir/bin/$l"; done
}

# kiln_import TAR IMAGE: the first kiln command on the private root, which starts kilnd for it in the background
kiln_import() {
  timeout "$step_timeout" "${kiln_cmd[@]}" import "$1" "$2" >"$work/kiln.log" 2>&1 \
    || { log "$bench_name: kiln import failed: $(why "$work/kiln.log")"; return 1; }
}

# podman_setup TAR IMAGE: the containers.conf DESIGN.md §4 asks for on these machines (runc, cgroupfs, file events, no
# default ulimits), private --root/--runroot, TAR imported as localhost/IMAGE. Sets podman_why on failure.
podman_why=""
podman_setup() {
  if ! command -v podman >/dev/null; then podman_why="not available: podman not installed"; return 1; fi
  printf '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n' \
    >"$work/containers.conf"
  if ! timeout "$step_timeout" "${podman_cmd[@]}" import -q "$1" "localhost/$2" >"$work/podman.log" 2>&1; then
    podman_why="not available: podman import failed: $(why "$work/podman.log")"; return 1
  fi
}

# runc_bundle DIR ROOTFS ARGS...: a `runc spec` bundle (no terminal) with a copy of ROOTFS, running ARGS
runc_bundle() {
  local dir="$1" rootfs="$2"; shift 2
  mkdir -p "$dir"
  cp -a "$rootfs" "$dir/rootfs"
  (cd "$dir" && runc spec)
  python3 - "$dir/config.json" "$@" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["process"]["args"] = sys.argv[2:]
json.dump(spec, open(path, "w"), indent=1)
PY
}

# kiln_cleanup: every sandbox of the private root removed through kilnd (network namespaces, CNI rules and leases
# go with it), then what a dead kilnd cannot remove: QEMUs (by vm/vmm.pid, checked to be a QEMU), shims (by
# shim.pid, checked to be a kiln-shim), runtime state in kiln's private runc/runsc roots; then kilnd itself (by the
# pid in its pid file: it runs in its own session), and the private root's bridges (its networks' conflists name
# them; never kiln0, the default root's).
kiln_cleanup() {
  local f pid id root br
  if [ -f "$krun/kilnd.pid" ] && kill -0 "$(cat "$krun/kilnd.pid")" 2>/dev/null; then
    local ids; ids="$(timeout "$step_timeout" "${kiln_cmd[@]}" ps -a -q 2>/dev/null)"
    # shellcheck disable=SC2086 # one id per word
    [ -n "$ids" ] && timeout "$step_timeout" "${kiln_cmd[@]}" rm -f $ids >/dev/null 2>&1
  fi
  for f in "$kroot"/sandboxes/*/vm/vmm.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    grep -q '^qemu-system' "/proc/$pid/comm" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  done
  for root in "$krun/runc"; do
    [ -d "$root" ] && for id in $(ls "$root" 2>/dev/null); do runc --root "$root" delete -f "$id" >/dev/null 2>&1; done
  done
  for root in "$krun/runsc"; do
    [ -d "$root" ] && for id in $(runsc --root "$root" list -q 2>/dev/null); do
      runsc --root "$root" delete -force "$id" >/dev/null 2>&1
    done
  done
  for f in "$kroot"/sandboxes/*/shim.pid "$krun"/*/*/shim.pid "$krun"/*/shim.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    grep -q '^kiln-shim' "/proc/$pid/comm" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  done
  [ -f "$krun/kilnd.pid" ] && kill_pid "$(cat "$krun/kilnd.pid")"
  bridges_cleanup "$kroot"
  return 0
}

# bridges_cleanup ROOT: the bridges of a private kiln root's networks (the default one is kiln<hash of ROOT>), which
# outlive kilnd as kiln0 does; never kiln0 itself. Call it after that root's kilnd has stopped.
bridges_cleanup() {
  local f br
  for f in "$1"/network/*.conflist; do
    [ -f "$f" ] || continue
    br="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["plugins"][0]["bridge"])' "$f" 2>/dev/null)"
    [ -n "$br" ] && [ "$br" != kiln0 ] && ip link del "$br" 2>/dev/null
  done
  return 0
}

# podman_cleanup: every container of the private podman root, force-removed
podman_cleanup() {
  [ -f "$work/containers.conf" ] || return 0
  timeout "$step_timeout" "${podman_cmd[@]}" rm -a -f -t 0 >/dev/null 2>&1
  return 0
}

# mounts_cleanup: whatever is still mounted under $work (kiln's overlays, podman's storage), deepest first, lazily
mounts_cleanup() {
  findmnt -rn -o TARGET | grep -F "$work/" | sort -r | while read -r m; do umount -l "$m"; done
  return 0
}
