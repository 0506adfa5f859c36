#!/usr/bin/env bash
# Pushes one large Wasm module to a local CNCF registry (Debian's docker-registry) with each peer,
# side by side: wasm-oci, wkg (if installed), skopeo (from an OCI layout), and a raw curl
# monolithic upload (the floor). Wall time from hyperfine; peak memory from GNU time.
# Each run first deletes the layer from the repository so every run really uploads it.
#
# Usage: bash bench/push-peers.sh [SIZE_MIB] [code|data]
# Needs hyperfine, time (Debian packages), skopeo, docker-registry; wkg is `cargo install wkg`.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib="${1:-64}"
shape="${2:-code}"
runs="${RUNS:-10}"
work="$(mktemp -d)"
trap 'kill "${registry_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release --quiet
bin="$PWD/target/release/wasm-oci"
module="$work/bench.wasm"
python3 bench/gen-module.py "$size_mib" "$module" "$shape"
digest="sha256:$(sha256sum "$module" | cut -d' ' -f1)"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
host="127.0.0.1:$port"
cat > "$work/config.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/data}, delete: {enabled: true}}
http: {addr: $host, secret: bench}
YAML
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -fs "http://$host/v2/" >/dev/null && break; sleep 0.1; done

# The same artifact as an OCI layout, for skopeo to copy from.
SOURCE_DATE_EPOCH=0 "$bin" push "$module" "oci:$work/layout:bench" >/dev/null 2>&1

drop() { echo "curl -s -o /dev/null -X DELETE http://$host/v2/bench/$1/blobs/$digest"; }

curl_push() {
  local location
  location="$(curl -si -X POST "http://$host/v2/bench/curl/blobs/uploads/" | awk 'tolower($1)=="location:"{print $2}' | tr -d '\r')"
  curl -fs -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$module" "${location}&digest=${digest}"
}
export -f curl_push
export host module digest

commands=(
  -n wasm-oci --prepare "$(drop wasm-oci)" "SOURCE_DATE_EPOCH=0 $bin push $module $host/bench/wasm-oci:bench --insecure"
  -n skopeo --prepare "$(drop skopeo)" "skopeo copy -q --dest-tls-verify=false oci:$work/layout:bench docker://$host/bench/skopeo:bench"
  -n curl-floor --prepare "$(drop curl)" "bash -c curl_push"
)
if command -v wkg >/dev/null; then
  commands+=(-n wkg --prepare "$(drop wkg)" "wkg oci push --insecure $host $host/bench/wkg:bench $module")
fi

echo "## Push of a ${size_mib} MiB module ($shape-heavy) to docker-registry 2.8.2 on loopback ($(nproc) cores)"
echo
hyperfine --shell bash --warmup 1 --runs "$runs" --style none --export-markdown "$work/times.md" "${commands[@]}" >/dev/null
cat "$work/times.md"
echo
echo "| peer | peak RSS (MiB) |"
echo "|:---|---:|"
rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }
eval "$(drop wasm-oci)"
echo "| wasm-oci | $(( $(rss env SOURCE_DATE_EPOCH=0 "$bin" push "$module" "$host/bench/wasm-oci:bench" --insecure) / 1024 )) |"
eval "$(drop skopeo)"
echo "| skopeo | $(( $(rss skopeo copy -q --dest-tls-verify=false "oci:$work/layout:bench" "docker://$host/bench/skopeo:bench") / 1024 )) |"
eval "$(drop curl)"
echo "| curl-floor | $(( $(rss bash -c curl_push) / 1024 )) |"
if command -v wkg >/dev/null; then
  eval "$(drop wkg)"
  echo "| wkg | $(( $(rss wkg oci push --insecure "$host" "$host/bench/wkg:bench" "$module") / 1024 )) |"
fi
