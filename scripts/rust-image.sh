#!/usr/bin/env bash
# Builds a stand-in for the Dockerfile's pinned rust image (rust:*-slim-bookworm) where base images
# cannot be pulled, and prints its tag. Debian bookworm (minbase) from Debian's own packages by
# debootstrap, with gcc, libc6-dev and ca-certificates as in the official image, and the host's
# rustup toolchain copied in the official image's layout: a minimal profile (rustc, cargo, the
# host's rust-std) plus the Wasm targets' rust-std under /usr/local/rustup, rustup and its proxies
# in /usr/local/cargo/bin, both trees world-writable, and the official image's ENV.
#
# Cached: the tag carries the toolchain's version and a hash of this script, and an existing image
# with that tag is used as is. Needs root (or sudo), debootstrap and podman.
set -euo pipefail

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

arch=$(uname -m)
host="$arch-unknown-linux-gnu"
rustc_path=$(rustup which rustc)
toolchain_dir=$(dirname "$(dirname "$rustc_path")")
version=$("$rustc_path" -V | awk '{print $2}')
script_hash=$(sha256sum "$0" | cut -c1-12)
tag="localhost/wasm-oci-rust-standin:$version-bookworm-$script_hash"

if $sudo podman image exists "$tag"; then
  echo "$tag"
  exit 0
fi

work=$(mktemp -d /var/tmp/rust-image.XXXXXX)
trap '$sudo rm -rf "$work"' EXIT
root="$work/root"

echo "building $tag (debootstrap of bookworm, rust $version)" >&2
$sudo debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates \
  bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 || {
  cat "$work/debootstrap.log" >&2
  exit 1
}
# What the image does not need: package lists and caches, documentation, locales.
$sudo rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
  "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* "$root"/usr/share/man/* \
  "$root"/usr/share/info/* "$root"/usr/share/locale/*

# The toolchain, named as rustup-init names the official image's (`1.91.0-<host>`), with only
# the components of the minimal profile and the Wasm targets.
name="$version-$host"
dest="$root/usr/local/rustup/toolchains/$name"
components=("rustc-$host" "cargo-$host" "rust-std-$host"
  rust-std-wasm32-wasip1 rust-std-wasm32-wasip2 rust-std-wasm32-unknown-unknown)
$sudo mkdir -p "$dest/lib/rustlib"
for component in "${components[@]}"; do
  manifest="$toolchain_dir/lib/rustlib/manifest-$component"
  test -f "$manifest" || {
    echo "the host toolchain lacks $component (rustup component/target add it)" >&2
    exit 1
  }
  sed -n 's/^file://p; s/^dir://p' "$manifest" | grep -v -e '^share/doc/' -e '^share/man/' \
    -e '^etc/' >"$work/files"
  (cd "$toolchain_dir" && tar -cf - --files-from="$work/files") | $sudo tar -xf - -C "$dest"
  grep -v -e '^file:share/doc/' -e '^file:share/man/' -e '^file:etc/' "$manifest" |
    $sudo tee "$dest/lib/rustlib/manifest-$component" >/dev/null
done
printf '%s\n' "${components[@]}" | $sudo tee "$dest/lib/rustlib/components" >/dev/null
$sudo cp "$toolchain_dir/lib/rustlib/rust-installer-version" \
  "$toolchain_dir/lib/rustlib/multirust-channel-manifest.toml" "$dest/lib/rustlib/"
{
  printf 'config_version = "1"\n'
  for component in "${components[@]}"; do
    case "$component" in
      rust-std-*) pkg=rust-std target=${component#rust-std-} ;;
      *) pkg=${component%-"$host"} target=$host ;;
    esac
    printf '\n[[components]]\npkg = "%s"\ntarget = "%s"\nis_extension = false\n' "$pkg" "$target"
  done
} | $sudo tee "$dest/lib/rustlib/multirust-config.toml" >/dev/null
printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n\n[overrides]\n' "$name" |
  $sudo tee "$root/usr/local/rustup/settings.toml" >/dev/null

$sudo mkdir -p "$root/usr/local/cargo/bin"
$sudo cp "$(command -v rustup)" "$root/usr/local/cargo/bin/rustup"
for proxy in cargo rustc rustdoc; do
  $sudo ln -s rustup "$root/usr/local/cargo/bin/$proxy"
done
# As the official image: anyone may write the toolchain and cargo's home.
$sudo chmod -R a+w "$root/usr/local/rustup" "$root/usr/local/cargo"

$sudo tar -C "$root" -cf - . | $sudo podman import \
  --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
  --change 'ENV CARGO_HOME=/usr/local/cargo' \
  --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV RUST_VERSION=$version" \
  --change 'CMD ["bash"]' \
  - "$tag" >/dev/null
echo "$tag"
