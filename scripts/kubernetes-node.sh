#!/usr/bin/env bash
# Prepares the Kubernetes node tests/it/kubernetes.rs starts: containerd from Debian's packages,
# unpacked (never installed: nothing runs as a service) under /usr/local/lib/wasm-oci-node —
# bookworm's 1.6.20 as containerd-1.6/ and trixie's 1.7 as containerd-1.7/ — and runwasi's
# wasmtime shim built from tests/kubernetes/shim into bin/. Also the build's needs: protoc (the
# shim's containerd API bindings and the tests' CRI client) and libseccomp (the shim's container
# library).
#
# Cached: a containerd directory that holds its binary is kept, and the shim is rebuilt only
# when its sources' hash differs from the one recorded beside it. Needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
node=/usr/local/lib/wasm-oci-node

missing=()
for p in protobuf-compiler libseccomp-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# unpack <dir> <suite> <version pattern>: Debian <suite>'s containerd .deb, downloaded through
# apt with a sources list and package lists of its own (the machine's apt setup, Debian's or
# Ubuntu's, is left as it was), its files under $node/<dir>. A directory that holds its binary is
# kept.
unpack() {
  local dir=$1 suite=$2 version=$3
  if [ -x "$node/$dir/usr/bin/containerd" ]; then return; fi
  local work
  work=$(mktemp -d)
  # apt's download user writes into it.
  chmod 0755 "$work"
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" >"$work/sources.list"
  local apt=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
  apt-get "${apt[@]}" update -qq
  (cd "$work" && apt-get "${apt[@]}" download -qq "containerd=$version")
  $sudo rm -rf "$node/$dir.new"
  $sudo mkdir -p "$node/$dir.new"
  $sudo dpkg -x "$work"/containerd_*.deb "$node/$dir.new"
  $sudo rm -rf "$node/$dir" "$work"
  $sudo mv "$node/$dir.new" "$node/$dir"
}

# Debian's archive key, which signs both suites (Ubuntu has the package too).
if [ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends debian-archive-keyring >/dev/null
fi
unpack containerd-1.6 bookworm "1.6.20*"
unpack containerd-1.7 trixie "1.7.*"

# The shim: a debug build (the module it compiles is a few bytes; an optimized wasmtime takes
# several times as long to build).
shim=tests/kubernetes/shim
hash=$(cat "$shim/Cargo.toml" "$shim/Cargo.lock" "$shim"/src/*.rs | sha256sum | cut -c1-16)
if [ "$(cat "$node/bin/shim.hash" 2>/dev/null)" != "$hash" ]; then
  cargo build --locked --quiet --manifest-path "$shim/Cargo.toml"
  target=$(cargo metadata --format-version 1 --no-deps --manifest-path "$shim/Cargo.toml" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  $sudo mkdir -p "$node/bin"
  $sudo install -m 0755 "$target/debug/containerd-shim-wasmtime-v1" "$node/bin/"
  echo "$hash" | $sudo tee "$node/bin/shim.hash" >/dev/null
fi
