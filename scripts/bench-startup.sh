#!/usr/bin/env bash
# Start-up of a step, for the default image (the Dockerfile's `toolchain` stage, what `uses:
# wasm-oci/wasm-oci-action@v1` runs) and the slim image (slim.Dockerfile, what the sub-actions
# `verify/`, `pull/` and `push/` run): the bytes a job downloads, and the seconds from `podman
# pull` out of a local CNCF registry (Debian's docker-registry), with an empty image store, to
# the action's first log line. Median of RUNS (5). Prints a Markdown section for BENCHMARKS.md.
#   DEFAULT=TAG SLIM=TAG: images already built (default: what the tests build,
#   localhost/wasm-oci-action-test:default and :sub-action); RUNS=5.
# Each run pulls into a store of its own (`podman --root`), so every layer is downloaded and
# unpacked, as on a fresh hosted runner; then runs the action as the runner does (locate mode,
# the example's module pushed into an OCI layout in the workspace, no network).
set -euo pipefail
cd "$(dirname "$0")/.."
default="${DEFAULT:-localhost/wasm-oci-action-test:default}"
slim="${SLIM:-localhost/wasm-oci-action-test:sub-action}"
runs="${RUNS:-5}"
for image in "$default" "$slim"; do
  podman image exists "$image" || {
    echo "no image $image: run \`cargo test --test it default_image:: container::\` first (they build both)" >&2
    exit 1
  }
done
wasm=target/examples/wasm32-wasip1/release/multiply.wasm
[ -f "$wasm" ] || cargo build --quiet --release --target wasm32-wasip1 \
  --manifest-path examples/multiply/Cargo.toml --target-dir target/examples

work=$(mktemp -d /var/tmp/wasm-oci-startup.XXXXXX)
registry_pid=""
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The registry, on a free loopback port.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host="127.0.0.1:$port"
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/data}}
http: {addr: $host, secret: bench}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -fs -o /dev/null "http://$host/v2/" && break; sleep 0.05; done

# Each image pushed as a registry stores it (gzip layers); what a job downloads is its manifest,
# config and layers.
declare -A bytes
for name in default slim; do
  image=$default
  [ "$name" = slim ] && image=$slim
  podman push -q --tls-verify=false --compression-format gzip "$image" "docker://$host/action:$name" >/dev/null
  bytes[$name]=$(skopeo inspect --tls-verify=false --raw "docker://$host/action:$name" | python3 -c '
import json, sys
raw = sys.stdin.buffer.read()
m = json.loads(raw)
print(len(raw) + m["config"]["size"] + sum(l["size"] for l in m["layers"]))')
done

driver=$(podman info --format '{{.Store.GraphDriverName}}')
seconds() { # name: median of RUNS, pull into an empty store to the first log line
  python3 - "$1" "$host" "$work" "$runs" "$driver" "$wasm" <<'PY'
import os, shutil, statistics, subprocess, sys, time
name, host, work, runs, driver, wasm = sys.argv[1:7]
times = []
for i in range(int(runs)):
    store = os.path.join(work, f"store-{name}-{i}")
    ws = os.path.join(work, f"ws-{name}-{i}")
    os.makedirs(ws)
    shutil.copy(wasm, os.path.join(ws, "multiply.wasm"))
    # podman refuses a runroot path longer than 50 characters.
    runroot = f"/tmp/wos-{name}-{i}"
    podman = ["podman", "--root", os.path.join(store, "root"), "--runroot", runroot,
              "--storage-driver", driver, "--runtime", "runc"]
    image = f"{host}/action:{name}"
    start = time.monotonic()
    subprocess.run(podman + ["pull", "-q", "--tls-verify=false", image], check=True,
                   stdout=subprocess.DEVNULL)
    run = podman + ["run", "--rm", "--network=none",
                    "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768",
                    "--workdir", "/github/workspace", "-v", f"{ws}:/github/workspace",
                    "-e", "GITHUB_ACTIONS=true", "-e", "CI=true", "-e", "INPUT_IMAGE=oci:out",
                    "-e", "INPUT_PATH=multiply.wasm", "-e", "INPUT_BUILD=none",
                    "-e", "INPUT_TAGS=1.0.0", "-e", "SOURCE_DATE_EPOCH=0", image, "action"]
    p = subprocess.Popen(run, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first = p.stdout.readline()
    times.append(time.monotonic() - start)
    p.stdout.read()
    if p.wait() != 0 or not first:
        sys.exit(f"the {name} image's action failed")
    subprocess.run(podman + ["rmi", "-af"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["podman", "unshare", "rm", "-rf", store], stderr=subprocess.DEVNULL)
    shutil.rmtree(store, ignore_errors=True)
    shutil.rmtree(runroot, ignore_errors=True)
print(f"{statistics.median(times):.2f}\t{min(times):.2f}\t{max(times):.2f}")
PY
}
IFS=$'\t' read -r default_s default_min default_max < <(seconds default)
IFS=$'\t' read -r slim_s slim_min slim_max < <(seconds slim)

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
at() { awk -v b="$1" -v r="$2" 'BEGIN { printf "%.1f", b * 8 / r / 1e6 }'; }
cat <<MD
## Start-up of the action's images

\`bash scripts/bench-startup.sh\` (after \`cargo test --test it default_image:: container::\` built
the default image from the Dockerfile on the stand-in rust image and the slim image from
slim.Dockerfile): each image pushed to the CNCF registry on loopback, then $runs times \`podman
pull\` into an empty image store (\`podman --root\` of its own) and the action run as the runner
runs it (locate mode: the example's module into an OCI layout, no network), timed to the
action's first log line.

| image | what runs it | a job downloads (manifest, config, gzip layers) | \`podman pull\` to the first log line, median (min – max) |
|:---|:---|---:|---:|
| default | \`uses: wasm-oci/wasm-oci-action@v1\` | $(mb "${bytes[default]}") | $default_s s ($default_min – $default_max) |
| slim | \`uses: wasm-oci/wasm-oci-action/verify@v1\`, \`/pull@v1\`, \`/push@v1\` | $(mb "${bytes[slim]}") | $slim_s s ($slim_min – $slim_max) |

On loopback the download costs almost nothing: these seconds are unpacking the layers and
starting the container, and they grow with the bytes. A hosted runner adds the download
itself, the bytes above over its link to ghcr.io: at 1 Gbit/s $(at "${bytes[default]}" 1000) s more for
the default image and $(at "${bytes[slim]}" 1000) s for the slim one ($(at "${bytes[default]}" 200) s and $(at "${bytes[slim]}" 200) s at 200 Mbit/s), and
its disk is slower to unpack 1.2 GB onto than this machine's. So a deploy job's \`verify/\` and
\`pull/\` steps, or a \`push/\` of a \`.wasm\` built on the host, start in seconds ($slim_s s here)
where the default image takes most of a minute or more ($default_s s here, plus its download);
every job pulls again, since a hosted runner starts with no images.
MD
