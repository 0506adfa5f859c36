#!/usr/bin/env bash
# Start-up cost of the default image (the Dockerfile's `toolchain` stage, as `uses:` runs it):
# its size on disk and compressed (`podman save | gzip`, as a registry's gzip layers carry it),
# and the time from `podman run` to the action's first log line, in build mode on
# examples/multiply. Prints a Markdown section for BENCHMARKS.md.
#   IMAGE=TAG: an image already built (default: what the tests build,
#   localhost/wasm-oci-action-test:default); RUNS=5.
set -euo pipefail
cd "$(dirname "$0")/.."
image="${IMAGE:-localhost/wasm-oci-action-test:default}"
runs="${RUNS:-5}"
podman image exists "$image" || {
  echo "no image $image: run \`cargo test --test it default_image::\` first (it builds it)" >&2
  exit 1
}

disk=$(podman image inspect --format '{{.Size}}' "$image")
compressed=$(podman save "$image" 2>/dev/null | gzip | wc -c)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
first_line=$(python3 - "$image" "$work" "$runs" <<'PY'
import os, shutil, statistics, subprocess, sys, time
image, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for i in range(runs):
    ws = os.path.join(work, f"ws{i}")
    shutil.copytree("examples/multiply", ws, ignore=shutil.ignore_patterns("target"))
    for d, _, files in os.walk(ws):
        os.chown(d, 1001, 1001)
        for f in files:
            os.chown(os.path.join(d, f), 1001, 1001)
    cmd = ["podman", "--runtime", "runc", "run", "--rm", "--network=none",
           "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768",
           "--workdir", "/github/workspace", "-v", f"{ws}:/github/workspace",
           "-e", "GITHUB_ACTIONS=true", "-e", "CI=true", "-e", "INPUT_IMAGE=oci:out",
           "-e", "INPUT_BUILD=auto", "-e", "GITHUB_SHA=0123456789abcdef0123456789abcdef01234567",
           "-e", "GITHUB_REPOSITORY=acme/multiply", "-e", "GITHUB_SERVER_URL=https://github.com",
           "-e", "SOURCE_DATE_EPOCH=0", image, "action"]
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdout.readline()
    times.append(time.monotonic() - start)
    p.stdout.read()
    p.wait()
print(f"median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}; {runs} runs)")
PY
)

mb() { awk -v b="$1" 'BEGIN { printf "%.0f MB (%.0f MiB)", b / 1e6, b / 1048576 }'; }
cat <<MD
## The default image

\`bash scripts/bench-default-image.sh\` (after \`cargo test --test it default_image::\` built the image
from the Dockerfile on the stand-in rust image of \`scripts/rust-image.sh\`: Debian bookworm
minbase, gcc, libc6-dev, ca-certificates, rustc and cargo with the host's and the three Wasm
targets' standard libraries):

- On disk (\`podman image inspect --format '{{.Size}}'\`): $(mb "$disk").
- Compressed (\`podman save | gzip | wc -c\`, about what a job downloads): $(mb "$compressed").
- From \`podman run\` to the action's first log line (build mode on examples/multiply, the image
  already present): $first_line.
MD
