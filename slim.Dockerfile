# syntax=docker/dockerfile:1
# The slim image alone: what the sub-actions (verify/, pull/, push/) run. The runner builds the
# last stage of a Dockerfile and no other, so the slim image has a file of its own; its stages
# are the Dockerfile's `rust`, `compile`, `bin` and `slim`, line for line (tests/it/contract.rs
# holds them equal). FROM scratch: the static musl `wasm-oci` and CA certificates, a few MB,
# for locate mode and for pull and verify.
# GitHub's rules for container actions: runs as root (no USER), no WORKDIR, exec-form absolute
# ENTRYPOINT; each action.yml passes `action` as the argument.

# The base image, pinned by digest (rust 1.91, Debian bookworm, slim), as a stage of its own: its
# FROM line names the image literally, so Dependabot moves tag and digest together. Another base
# (a local stand-in) replaces the stage by name: `--build-context rust=container-image://IMAGE`
# (podman) or `docker-image://IMAGE` (docker buildx).
FROM rust:1.91-slim-bookworm@sha256:8514999d4786ef12efe89239e86b3d0a021b94b9d35108c8efe6c79ca7dc1a65 AS rust

# The static binary. The tests skip this stage: they build the same binary on the host and pass it
# in with `--build-context bin=DIR`.
FROM rust AS compile
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add "$(uname -m)-unknown-linux-musl"
COPY . /src
RUN cd /src \
    && cargo build --locked --release --target "$(uname -m)-unknown-linux-musl" --bin wasm-oci \
    && mkdir -p /bin-out/etc/ssl/certs \
    && mkdir -m 1777 /bin-out/tmp \
    && cp "target/$(uname -m)-unknown-linux-musl/release/wasm-oci" /bin-out/wasm-oci \
    && cp /etc/ssl/certs/ca-certificates.crt /bin-out/etc/ssl/certs/ca-certificates.crt

# What the images take from the build: /wasm-oci, /etc/ssl/certs/ca-certificates.crt and an
# empty /tmp (verify and pull stage a download in a temporary directory; scratch has none).
FROM scratch AS bin
COPY --from=compile /bin-out/ /

FROM scratch AS slim
COPY --from=bin /wasm-oci /wasm-oci
COPY --from=bin /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=bin /tmp /tmp
ENTRYPOINT ["/wasm-oci"]
CMD ["action"]
