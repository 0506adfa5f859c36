#!/usr/bin/env bash
# The latency benchmark: wasm-oci's jobs and its peers' against a CNCF registry 30 and 100 ms
# of round trip away (bench/latency-proxy.py), plain HTTP and HTTPS with token auth; rewrites
# the "Latency" section of BENCHMARKS.md and keeps the others.
# Knobs: BIN=path (a wasm-oci build to measure; default: the release build), RUNS=N (runs per job, default 3), RTTS="30 100", SIZES="seed 64", MODES="http https-token",
#        OUT=BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
out="${OUT:-$root/BENCHMARKS.md}"
need() { # tool, how to install it
  command -v "$1" >/dev/null || { echo "bench-latency: missing $1 ($2)" >&2; exit 1; }
}
need skopeo "apt-get install -y skopeo"
need docker-registry "apt-get install -y docker-registry"
need openssl "apt-get install -y openssl"
need curl "apt-get install -y curl"
need python3 "apt-get install -y python3"
need cargo "rustup (https://rustup.rs)"
python3 -c 'import cryptography' 2>/dev/null || { echo "bench-latency: missing python3-cryptography (apt-get install -y python3-cryptography)" >&2; exit 1; }
command -v wkg >/dev/null || echo "bench-latency: wkg not found (cargo install wkg): left out" >&2

WORK="$(mktemp -d "${TMPDIR:-/tmp}/wasm-oci-latency.XXXXXX")"
export WORK
cleanup() {
  local status=$?
  if [ "$status" != 0 ] && [ -s "$WORK/peers.log" ]; then
    echo "bench-latency: the end of the clients' log:" >&2
    tail -n 15 "$WORK/peers.log" >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "bench-latency: building wasm-oci (release) and the sample crate's module" >&2
if [ -z "${BIN:-}" ]; then # BIN=path measures another build
  cargo build --release --locked --quiet
  BIN="$root/target/release/wasm-oci"
fi
(cd examples/multiply && cargo build --release --locked --quiet --target wasm32-wasip1 --target-dir "$root/target/examples")
SEED="$(ls "$root"/target/examples/wasm32-wasip1/release/*.wasm | head -1)"
export BIN SEED

ORAS_PY=""
venv="$root/target/bench-venv"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import oras.client' 2>/dev/null; then
  ORAS_PY="$venv/bin/python $root/bench/oras-py.py"
elif python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/pip" install --quiet oras >/dev/null 2>&1; then
  ORAS_PY="$venv/bin/python $root/bench/oras-py.py"
else
  echo "bench-latency: oras-py does not install here (pip install oras): left out" >&2
fi
export ORAS_PY

section="$WORK/section.md"
python3 bench/latency.py >"$section"
{
  printf '\n'
  printf '| | |\n|:---|:---|\n'
  printf '| date | %s |\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf '| commit measured | %s%s |\n' "$(git rev-parse --short HEAD)" "$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (with uncommitted changes)')"
  printf '| load average before the run | %s |\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '| skopeo | %s |\n' "$(skopeo --version)"
  command -v wkg >/dev/null && printf '| wkg | %s |\n' "$(wkg --version)"
  [ -n "$ORAS_PY" ] && printf '| oras-py | %s |\n' "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("oras"))')"
  true
} >>"$section"
# The section replaces the old one where it stands (or is appended); the rest of the file is kept.
python3 bench/splice.py "$out" "$section" --own "## Latency: a registry 30 and 100 ms away"
echo "bench-latency: wrote the latency section of $out" >&2
