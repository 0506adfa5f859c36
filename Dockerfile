# syntax=docker/dockerfile:1
# The action's image: a static `wasm-oci` binary that runs `wasm-oci action`.
# GitHub's rules for container actions: runs as root, no WORKDIR, exec-form absolute ENTRYPOINT.

FROM rust:1.91-alpine AS build
RUN apk add --no-cache musl-dev
COPY . /src
RUN cd /src && cargo build --locked --release --bin wasm-oci \
    && cp target/release/wasm-oci /wasm-oci

FROM scratch
COPY --from=build /wasm-oci /wasm-oci
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/wasm-oci"]
CMD ["action"]
