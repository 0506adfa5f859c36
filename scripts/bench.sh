#!/usr/bin/env bash
# The benchmark: push and pull of Wasm modules of 1, 64 and 256 MiB against the CNCF registry
# (Debian's docker-registry) on loopback, wasm-oci side by side with a raw curl blob upload and
# download of the same bytes (the floor) and every other client that installs here (skopeo, wkg,
# oras-py), wasm-oci also without provenance, and the fallback-tag settle on its own; then re-push
# of an unchanged artifact, start-up time and the slim image's size.
# Medians from hyperfine, peak RSS from GNU time; rewrites its sections of BENCHMARKS.md (the
# latency, default-image and start-up sections, written by their own scripts, are kept).
#
# Usage: bash scripts/bench.sh
# Env: SIZES="1 64 256" (MiB), RUNS=N (runs per command; default 20, 5 for 256 MiB and more),
#      ROUNDS=N (the peers take turns, RUNS/ROUNDS runs each a round; default 5),
#      WARMUP=1, SHAPE=data (or code: the bulk is function bodies, see bench/gen-module.py),
#      IMAGE=1 (0 skips the musl build and the slim image), OUT=BENCHMARKS.md.
# The commands below are single-quoted on purpose: hyperfine's bash expands them at run time.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
sizes="${SIZES:-1 64 256}"
warmup="${WARMUP:-1}"
shape="${SHAPE:-data}"
image="${IMAGE:-1}"
out="${OUT:-$root/BENCHMARKS.md}"

need() { # tool, Debian package
  command -v "$1" >/dev/null || { echo "bench: missing $1 (apt-get install -y $2)" >&2; exit 1; }
}
need hyperfine hyperfine
need /usr/bin/time time
need skopeo skopeo
need docker-registry docker-registry
need curl curl
need python3 python3
need cargo "rustup (https://rustup.rs)"

BENCH_WORK="$(mktemp -d "${TMPDIR:-/tmp}/wasm-oci-bench.XXXXXX")"
export BENCH_WORK
results="$BENCH_WORK/results"
mkdir -p "$results"
cleanup() {
  local status=$?
  registry_stop 2>/dev/null || true
  if [ "$status" != 0 ]; then
    for log in peers registry; do
      [ -s "$BENCH_WORK/$log.log" ] && { echo "bench: the end of the $log log:" >&2; tail -n 20 "$BENCH_WORK/$log.log" >&2; }
    done
  fi
  rm -rf "$BENCH_WORK"
}
trap cleanup EXIT
started="$(date +%s)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
say() { echo "bench: $*" >&2; }

# --- the registry: one instance on a free port, restarted on a fresh data directory on demand ---
# A free port below the ephemeral range, so that no client connection takes it while the registry
# restarts.
port="$(python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for port in random.sample(range(10000, low), 1000):
    try:
        socket.socket().bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break
PY
)"
HOST="127.0.0.1:$port"
export HOST
write_config() { # file, log level, access log disabled?
  cat >"$1" <<YAML
version: 0.1
log: {level: $2, accesslog: {disabled: $3}}
storage: {filesystem: {rootdirectory: $BENCH_WORK/data}, delete: {enabled: true}}
http: {addr: $HOST, secret: bench}
YAML
}
write_config "$BENCH_WORK/quiet.yml" error true
write_config "$BENCH_WORK/logged.yml" info false
BENCH_REGISTRY_CONFIG="$BENCH_WORK/quiet.yml"
export BENCH_REGISTRY_CONFIG

registry_start() {
  local pid attempt _
  for attempt in 1 2 3; do
    docker-registry serve "$BENCH_REGISTRY_CONFIG" </dev/null >>"$BENCH_WORK/registry.log" 2>&1 &
    pid=$!
    echo "$pid" >"$BENCH_WORK/registry.pid"
    for _ in $(seq 500); do
      curl -fs -o /dev/null "http://$HOST/v2/" && return 0
      kill -0 "$pid" 2>/dev/null || break # it exited: start it again
      sleep 0.02
    done
    echo "bench: the registry did not start (attempt $attempt; see its log)" >>"$BENCH_WORK/peers.log"
    registry_stop
    sleep 1
  done
  return 1
}
registry_stop() {
  local pid
  [ -f "$BENCH_WORK/registry.pid" ] || return 0
  pid="$(cat "$BENCH_WORK/registry.pid")"
  rm -f "$BENCH_WORK/registry.pid"
  kill "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
}
# Before every timed push: an empty registry, so every run uploads everything.
registry_fresh() {
  registry_stop
  rm -rf "$BENCH_WORK/data"
  sync # the last run's writes reach the disk now, not during the next run
  registry_start
}
# Before every timed pull: no output left from the last run.
fresh_out() {
  rm -rf "$OUT"
  sync
}
export -f registry_start registry_stop registry_fresh fresh_out

# --- build, modules, peers ---
say "building wasm-oci (release)"
cargo build --release --locked --quiet
BIN="$root/target/release/wasm-oci"
export BIN

oras_py=""
venv="$root/target/bench-venv"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import oras.client' 2>/dev/null; then
  oras_py="$venv/bin/python"
elif python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/pip" install --quiet oras >/dev/null 2>&1; then
  oras_py="$venv/bin/python"
else
  say "oras-py does not install here (pip install oras): skipped"
fi
ORAS_PY="$oras_py $root/bench/oras-py.py"
export ORAS_PY

# Each peer's commands, exactly as hyperfine runs them (bash, with the variables exported).
# MODULE, DIGEST, LAYOUT are per size; OUT is a fresh path per run.
peers=(wasm-oci curl-floor skopeo)
command -v wkg >/dev/null && peers+=(wkg)
[ -n "$oras_py" ] && peers+=(oras-py)
declare -A push pull
push[wasm-oci]='SOURCE_DATE_EPOCH=0 $BIN push $MODULE $HOST/bench/wasm-oci:bench --insecure'
# The same push without a provenance referrer, so without the fallback tag and its settle.
push[wasm-oci-no-provenance]='SOURCE_DATE_EPOCH=0 $BIN push $MODULE $HOST/bench/wasm-oci:bench --insecure --provenance false'
pull[wasm-oci]='$BIN pull $HOST/bench/wasm-oci:bench --insecure -o $OUT'
push[curl-floor]='loc=$(curl -fsS -o /dev/null -w "%header{location}" -X POST http://$HOST/v2/bench/curl/blobs/uploads/) && curl -fsS -o /dev/null -H "Expect:" -H "Content-Type: application/octet-stream" -T $MODULE "$loc&digest=$DIGEST"'
pull[curl-floor]='curl -fsS -o $OUT http://$HOST/v2/bench/curl/blobs/$DIGEST'
push[skopeo]='skopeo copy -q --dest-tls-verify=false oci:$LAYOUT:bench docker://$HOST/bench/skopeo:bench'
pull[skopeo]='skopeo copy -q --src-tls-verify=false docker://$HOST/bench/skopeo:bench oci:$OUT:bench'
push[wkg]='wkg oci push --insecure $HOST $HOST/bench/wkg:bench $MODULE'
pull[wkg]='wkg oci pull --insecure $HOST $HOST/bench/wkg:bench -o $OUT'
push[oras-py]='$ORAS_PY push $HOST/bench/oras-py:bench $MODULE'
pull[oras-py]='$ORAS_PY pull $HOST/bench/oras-py:bench $OUT'
OUT="$BENCH_WORK/out"
export OUT
same='SOURCE_DATE_EPOCH=0 $BIN push $MODULE $HOST/bench/wasm-oci:bench --insecure'
new='SOURCE_DATE_EPOCH=0 $BIN push $MODULE $HOST/bench/wasm-oci:t${EPOCHREALTIME/./} --insecure'
printf 're-push\tsame-tag\t%s\nre-push\tnew-tag\t%s\n' "$same" "$new" >>"$results/commands.tsv"
for p in "${peers[@]}"; do
  printf '%s\tpush\t%s\n%s\tpull\t%s\n' "$p" "${push[$p]}" "$p" "${pull[$p]}" >>"$results/commands.tsv"
done
printf '%s\tpush\t%s\n' wasm-oci-no-provenance "${push[wasm-oci-no-provenance]}" >>"$results/commands.tsv"
# Push only: the pull is the same as wasm-oci's.
pushers=("${peers[@]:0:1}" wasm-oci-no-provenance "${peers[@]:1}")

# Times every command of a hyperfine run in rounds (the peers take turns, so a slow spell of
# the machine falls on all of them alike), merged into one --export-json file.
# Usage: in_rounds RUNS OUT.json HYPERFINE-ARGS...
rounds="${ROUNDS:-5}"
in_rounds() {
  local runs="$1" out="$2" round per files=()
  shift 2
  per=$((runs / turns))
  for round in $(seq 1 "$turns"); do
    hyperfine --shell bash --style basic --warmup "$([ "$round" = 1 ] && echo "$warmup" || echo 0)" \
      --runs "$per" --export-json "$out.$round" "$@" >&2
    files+=("$out.$round")
  done
  python3 bench/merge-runs.py "$out" "${files[@]}"
  rm -f "${files[@]}"
}

# A command as hyperfine runs it: its messages go to a log, shown if the benchmark fails.
logged() { printf '{ %s; } 2>>"$BENCH_WORK/peers.log"' "$1"; }

# Peak memory of one more run of a command, after its (unmeasured) preparation: GNU time's peak
# RSS (%M, KiB) and the peak anonymous RSS sampled from /proc (bench/peak-mem.py).
peak_rss() { # size, op, peer, prepare, command
  local kib
  bash -c "$4"
  kib="$(python3 bench/peak-mem.py "$5" 2>>"$BENCH_WORK/peers.log")"
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$kib" >>"$results/rss.tsv"
}

registry_start
for size in $sizes; do
  runs="${RUNS:-$([ "$size" -ge 256 ] && echo 5 || echo 20)}"
  turns=$((rounds < runs ? rounds : runs))
  runs=$(((runs + turns - 1) / turns * turns)) # the same number of runs each round
  MODULE="$BENCH_WORK/bench-$size.wasm"
  LAYOUT="$BENCH_WORK/layout-$size"
  say "generating a $size MiB module"
  python3 bench/gen-module.py "$size" "$MODULE" "$shape"
  DIGEST="sha256:$(sha256sum "$MODULE" | cut -d' ' -f1)"
  export MODULE LAYOUT DIGEST
  printf '%s\t%s\t%s\t%s\n' "$size" "$(stat -c %s "$MODULE")" "$DIGEST" "$runs" >>"$results/modules.tsv"
  # The same artifact as an OCI layout, for skopeo to copy from.
  rm -rf "$LAYOUT"
  SOURCE_DATE_EPOCH=0 "$BIN" push "$MODULE" "oci:$LAYOUT:bench" >/dev/null 2>>"$BENCH_WORK/peers.log"

  say "$size MiB: push ($runs runs per peer)"
  args=()
  for p in "${pushers[@]}"; do args+=(-n "$p" --prepare registry_fresh "$(logged "${push[$p]}")"); done
  in_rounds "$runs" "$results/push-$size.json" "${args[@]}"
  for p in "${pushers[@]}"; do peak_rss "$size" push "$p" registry_fresh "${push[$p]}"; done
  # The fallback-tag settle: the wait before the fallback tag is read back (the registry has
  # no referrers API), which is waiting, not transfer. wasm-oci logs it at debug; the sum of
  # one push's waits, for each of RUNS more pushes.
  for _ in $(seq "$runs"); do
    registry_fresh
    SOURCE_DATE_EPOCH=0 RUST_LOG=wasm_oci=debug "$BIN" push "$MODULE" "$HOST/bench/wasm-oci:bench" --insecure 2>&1 >/dev/null |
      sed -nE 's/.*referrers fallback tag .*: settle ([0-9.]+) ms before the read-back.*/\1/p' |
      awk -v size="$size" '{ sum += $1 } END { printf "%s\t%.1f\n", size, sum }' >>"$results/settle.tsv"
  done

  say "$size MiB: pull ($runs runs per peer)"
  registry_fresh
  for p in "${peers[@]}"; do bash -c "${push[$p]}" >/dev/null 2>>"$BENCH_WORK/peers.log"; done
  args=()
  for p in "${peers[@]}"; do args+=(-n "$p" --prepare fresh_out "$(logged "${pull[$p]}")"); done
  in_rounds "$runs" "$results/pull-$size.json" "${args[@]}"
  for p in "${peers[@]}"; do peak_rss "$size" pull "$p" fresh_out "${pull[$p]}"; done
  rm -rf "$OUT"

  if [ "$size" -ge 64 ]; then
    # Re-push of the unchanged artifact: the registry keeps what the first push stored.
    say "$size MiB: re-push ($runs runs each)"
    registry_fresh
    SOURCE_DATE_EPOCH=0 "$BIN" push "$MODULE" "$HOST/bench/wasm-oci:bench" --insecure >/dev/null 2>>"$BENCH_WORK/peers.log"
    in_rounds "$runs" "$results/repush-$size.json" -n same-tag "$(logged "$same")" -n new-tag "$(logged "$new")"
    # What one re-push sends: the registry's access log (every request) and the bytes the
    # registry process read (rchar in /proc/PID/io: sockets and files), before and after.
    registry_stop
    BENCH_REGISTRY_CONFIG="$BENCH_WORK/logged.yml" registry_start
    for mode in same-tag new-tag; do
      cmd="$same"
      [ "$mode" = new-tag ] && cmd="$new"
      pid="$(cat "$BENCH_WORK/registry.pid")"
      : >"$BENCH_WORK/registry.log"
      before="$(awk '$1=="rchar:"{print $2}' "/proc/$pid/io")"
      bash -c "$cmd" >/dev/null 2>>"$BENCH_WORK/peers.log"
      after="$(awk '$1=="rchar:"{print $2}' "/proc/$pid/io")"
      sleep 0.2 # the access log is written after the response
      requests="$(grep -oE '"(GET|HEAD|POST|PUT|PATCH|DELETE) [^ ]+ HTTP' "$BENCH_WORK/registry.log" | sed 's/^"//; s/ HTTP$//' || true)"
      uploads="$(grep -cE '^(POST|PATCH|PUT) [^ ]*/blobs/uploads/' <<<"$requests" || true)"
      # The layer goes as a PUT naming its digest, or streamed: a PATCH (the only blob big
      # enough to be streamed) and the PUT that commits it.
      layer="$(grep -cE "^PATCH [^ ]*/blobs/uploads/|^PUT [^ ]*/blobs/uploads/.*${DIGEST#sha256:}" <<<"$requests" || true)"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$mode" "$(grep -c . <<<"$requests" || true)" "$uploads" \
        "$((after - before))" "$layer" "$(sed -E 's/\?.*//' <<<"$requests" | tr '\n' ',' | sed 's/,$//')" \
        >>"$results/repush.tsv"
    done
    registry_stop
    registry_start
  fi
  rm -rf "$LAYOUT"
done
registry_stop

# --- start-up and the slim image ---
say "start-up"
hyperfine -N --style basic --warmup 5 --export-json "$results/startup.json" "$BIN --version" >&2
if [ "$image" = 1 ]; then
  say "slim image (static musl build, podman build --target slim)"
  triple="$(uname -m)-unknown-linux-musl"
  if cargo build --release --locked --quiet --bin wasm-oci --target "$triple" --target-dir target/container; then
    ctx="$BENCH_WORK/image"
    mkdir -p "$ctx/etc/ssl/certs" && mkdir -m 1777 "$ctx/tmp"
    cp "target/container/$triple/release/wasm-oci" "$ctx/wasm-oci"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/etc/ssl/certs/"
    printf 'binary\t%s\ncerts\t%s\n' "$(stat -c %s "$ctx/wasm-oci")" \
      "$(stat -c %s "$ctx/etc/ssl/certs/ca-certificates.crt")" >>"$results/image.tsv"
    tag=localhost/wasm-oci-bench:slim
    if command -v podman >/dev/null &&
      podman build -q --target slim --tag "$tag" --build-context "bin=$ctx" --file Dockerfile "$ctx" >/dev/null 2>"$BENCH_WORK/podman.log"; then
      printf 'image\t%s\n' "$(podman image inspect --format '{{.Size}}' "$tag")" >>"$results/image.tsv"
      podman rmi -f "$tag" >/dev/null 2>&1 || true
    else
      say "podman build failed: reporting the binary and certificates only"
    fi
  else
    say "the static musl build failed (rustup target add $triple; apt-get install musl-tools)"
  fi
fi

# --- the machine and the versions ---
{
  printf 'shape\t%s\n' "$shape"
  printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'commit\t%s%s\n' "$(git rev-parse --short HEAD)" "$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (with uncommitted changes)')"
  printf 'cpu\t%s\n' "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
  printf 'nproc\t%s\n' "$(nproc)"
  printf 'memory\t%s\n' "$(awk '/^MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  printf 'kernel\t%s\n' "$(uname -sr)"
  printf 'os\t%s\n' "$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"')"
  printf 'disk\t%s\n' "$(findmnt -n -o SOURCE,FSTYPE -T "$BENCH_WORK" | tr -s ' ')"
  printf 'wasm-oci\t%s\n' "$("$BIN" --version)"
  printf 'rustc\t%s\n' "$(rustc --version)"
  printf 'docker-registry\t%s\n' "$(docker-registry --version)"
  printf 'curl\t%s\n' "$(curl --version | head -1 | cut -d' ' -f1-2)"
  printf 'skopeo\t%s\n' "$(skopeo --version)"
  command -v wkg >/dev/null && printf 'wkg\t%s\n' "$(wkg --version)"
  [ -n "$oras_py" ] && printf 'oras-py\toras-py %s (PyPI `oras`), %s\n' \
    "$("$oras_py" -c 'import importlib.metadata as m; print(m.version("oras"))')" "$("$oras_py" --version)"
  printf 'hyperfine\t%s\n' "$(hyperfine --version)"
  printf 'elapsed\t%s\n' "$(($(date +%s) - started))"
  printf 'load\t%s before, %s after\n' "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$results/machine.tsv"

# This script's sections of the file are rewritten; the default image's, the start-up and the
# latency sections (their own scripts') are kept as they are.
default_image="## The default image"
startup="## Start-up of the action's images"
latency="## Latency: a registry 30 and 100 ms away"
python3 bench/report.py "$results" >"$BENCH_WORK/report.md"
python3 bench/splice.py "$out" "$BENCH_WORK/report.md" --all-but "$default_image" "$startup" "$latency"
# The default image, when the tests have built it (`cargo test --test it default_image::`).
if [ "$image" = 1 ] && podman image exists localhost/wasm-oci-action-test:default 2>/dev/null; then
  bash scripts/bench-default-image.sh >"$BENCH_WORK/default-image.md"
  python3 bench/splice.py "$out" "$BENCH_WORK/default-image.md" --own "$default_image"
fi
say "wrote $out in $(($(date +%s) - started)) s"
