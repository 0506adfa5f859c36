#!/usr/bin/env python3
"""Writes BENCHMARKS.md (to stdout) from the results directory of scripts/bench.sh."""
import json
import os
import sys

res = sys.argv[1]
MiB = 1024 * 1024
FLOOR = "curl-floor"


def path(name):
    return os.path.join(res, name)


def tsv(name):
    if not os.path.exists(path(name)):
        return []
    with open(path(name)) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def hyperfine(name):
    """{command name: result} from a hyperfine --export-json file, or {}."""
    if not os.path.exists(path(name)):
        return {}
    with open(path(name)) as f:
        return {r["command"]: r for r in json.load(f)["results"]}


machine = dict((row[0], row[1]) for row in tsv("machine.tsv"))
modules = [(int(r[0]), int(r[1]), r[2], int(r[3])) for r in tsv("modules.tsv")]
commands = {(r[0], r[1]): r[2] for r in tsv("commands.tsv")}
peers = list(dict.fromkeys(r[0] for r in tsv("commands.tsv") if r[0] != "re-push"))
rss = {(int(r[0]), r[1], r[2]): int(r[3]) / 1024 for r in tsv("rss.tsv")}
anon = {(int(r[0]), r[1], r[2]): int(r[4]) / 1024 for r in tsv("rss.tsv") if len(r) > 4}
repush = {(int(r[0]), r[1]): r[2:] for r in tsv("repush.tsv")}
image = {r[0]: int(r[1]) for r in tsv("image.tsv")}
settles = {}
for r in tsv("settle.tsv"):
    settles.setdefault(int(r[0]), []).append(float(r[1]) / 1000)
times = {}
for size, *_ in modules:
    for op in ("push", "pull"):
        times[(size, op)] = hyperfine(f"{op}-{size}.json")
    times[(size, "repush")] = hyperfine(f"repush-{size}.json")
startup = hyperfine("startup.json")


def median(size, op, peer):
    r = times.get((size, op), {}).get(peer)
    return r and r["median"]


def ratio(size, op, peer):
    m, floor = median(size, op, peer), median(size, op, FLOOR)
    return m / floor if m and floor else None


out = []
w = out.append
w("# Benchmarks")
w("")
w("Push and pull of one Wasm module of 1, 64 and 256 MiB, `wasm-oci` side by side with the other")
w("clients that install here and with a raw `curl` blob upload and download of the same bytes, the")
w("floor, against the CNCF registry (Debian's `docker-registry`) on loopback; then re-push of an")
w("unchanged artifact, start-up and the slim image. The sections up to the default image's are")
w("written by one command, from one run (the default image's, the start-up and the latency sections by their own")
w("scripts; each script rewrites only its own sections):")
w("")
w("```sh")
w("bash scripts/bench.sh        # SIZES=\"1 64\" RUNS=3 for a quick run")
w("```")
w("")
w("How it measures:")
w("")
shape = machine.get("shape", "data")
if shape == "data":
    w("- The modules come from `bench/gen-module.py SIZE OUT data`: valid core modules whose bulk is one")
    w("  data segment of random bytes (incompressible, like embedded assets).")
else:
    w(f"- The modules come from `bench/gen-module.py SIZE OUT {shape}`: valid core modules whose bulk is")
    w("  function bodies of 1 MiB each, like compiled code (`SHAPE=code`).")
w("- Each timing is the median of several hyperfine runs (after one warm-up run). The peers take")
w("  turns: the runs are made in rounds (`ROUNDS`, 5 by default) of a few runs of each peer, so a")
w("  slow spell of the machine falls on every peer alike, not on the one whose turn it was. Before")
w("  every push run the registry is stopped, its data directory deleted and the registry started")
w("  again, so every run uploads everything into an empty registry. Pulls read from a registry")
w("  that holds each peer's artifact (pushed once beforehand, each peer into its own repository),")
w("  and every run writes a fresh output file. Before every run, `sync` puts the last run's writes")
w("  on the disk.")
w("- The floor moves only the blob: one monolithic upload (`POST`, then `PUT` with the digest; `curl")
w("  -T` streams the file, where `--data-binary @file` would read it all into memory first; `Expect:`")
w("  is sent empty, so curl does not wait for a `100 Continue`) and one `GET`, with no manifest.")
w("  Every other peer also uploads a config and a manifest; `wasm-oci` validates the module and")
w("  pushes its provenance statement as a referrer, as users run it.")
w("- The push target allows the referrers fallback tag's settle: with no referrers API (the CNCF")
w("  registry 2.8, ghcr.io) the push writes the `sha256-<hex>` tag and waits before reading it")
w("  back, so that a concurrent push's write is seen (`src/registry/referrers.rs`, `settle`). That")
w("  wait is safety, not transfer: the benchmark reads it from `wasm-oci`'s debug log")
w("  (`RUST_LOG=wasm_oci=debug`, the sum of one push's waits, over as many more pushes) and reports")
w("  it on its own line, and times `wasm-oci-no-provenance` (`--provenance false`: no referrer, no")
w("  wait) beside the others.")
w("- Peak RSS is GNU time's maximum resident set (`%M`) of one more run of each command (after the")
w("  same preparation), the largest process of the command. It counts the pages of a file that a")
w("  process maps into memory; the anonymous column leaves those out: the largest `RssAnon` of the")
w("  command's processes, sampled every 5 ms from `/proc` by `bench/peak-mem.py` in the same run.")
w("- Re-push: the registry keeps the first push; `wasm-oci push` again with the same tag and with a")
w("  new tag each run. What one re-push sends is read from the registry's access log (every request")
w("  it served during that push) and from the bytes the registry process read meanwhile (`rchar` of")
w("  `/proc/PID/io`: sockets and files alike), so an upload of the layer could not go unseen.")
w("")

w("## Machine")
w("")
w("| | |")
w("|:---|:---|")
for key, label in [
    ("date", "date"),
    ("commit", "commit measured"),
    ("cpu", "CPU"),
    ("nproc", "cores (nproc)"),
    ("memory", "memory"),
    ("os", "OS"),
    ("kernel", "kernel"),
    ("disk", "registry data directory on"),
    ("elapsed", "run time of the benchmark (s)"),
    ("load", "load average (1, 5, 15 min) on the machine"),
]:
    if key in machine:
        w(f"| {label} | {machine[key]} |")
w("")
w("| tool | version |")
w("|:---|:---|")
for key in ["wasm-oci", "rustc", "docker-registry", "curl", "skopeo", "wkg", "oras-py", "hyperfine"]:
    if key in machine:
        w(f"| {key} | {machine[key]} |")
if "oras-py" not in machine:
    w("| oras-py | not installed (`pip install oras` failed): not measured |")
w("")
w("Not measured: the Go clients (`oras`, `crane`, `regctl`) and wasm-to-oci, which no package")
w("registry this machine reaches provides.")
w("")


def fmt_s(x):
    return "—" if x is None else f"{x:.3f}"


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}x"


def fmt_mib(x):
    return "—" if x is None else f"{x:.0f}"


# --- the targets ---
def yes(ok):
    return "—" if ok is None else ("yes" if ok else "**no**")


def middle(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


targets = []
# The push with provenance lists it in the fallback tag and waits before reading that back (the
# settle, a safety margin against concurrent pushes, not transfer): its target is 1.1x the floor
# plus that wait, which has a target of its own. Without provenance there is no wait.
push, floor, settle = median(64, "push", "wasm-oci"), median(64, "push", FLOOR), middle(settles.get(64, []))
targets.append(
    (
        "push of 64 MiB at most 1.1x the curl floor plus the fallback-tag settle",
        "not measured"
        if None in (push, floor, settle)
        else f"{fmt_s(push)} s ≤ 1.1 × {fmt_s(floor)} s + {settle * 1000:.0f} ms = {1.1 * floor + settle:.3f} s",
        None if None in (push, floor, settle) else push <= 1.1 * floor + settle,
    )
)
targets.append(
    (
        "the fallback-tag settle of that push at most 60 ms",
        "not measured"
        if settle is None
        else f"{settle * 1000:.0f} ms (median of {len(settles[64])} pushes, from wasm-oci's debug log)",
        None if settle is None else settle <= 0.060,
    )
)
r = ratio(64, "push", "wasm-oci-no-provenance")
targets.append(
    (
        "push of 64 MiB with `provenance: false` at most 1.1x the curl floor",
        "not measured"
        if r is None
        else f"{fmt_s(median(64, 'push', 'wasm-oci-no-provenance'))} s / {fmt_s(floor)} s = {r:.2f}x",
        None if r is None else r <= 1.10,
    )
)
r = ratio(64, "pull", "wasm-oci")
targets.append(
    (
        "pull of 64 MiB at most 1.1x the curl floor",
        "not measured"
        if r is None
        else f"{fmt_s(median(64, 'pull', 'wasm-oci'))} s / {fmt_s(median(64, 'pull', FLOOR))} s = {r:.2f}x",
        None if r is None else r <= 1.10,
    )
)
for op in ("push", "pull"):
    m = rss.get((256, op, "wasm-oci"))
    targets.append(
        (
            f"peak RSS {op}ing 256 MiB under 64 MiB",
            "not measured"
            if m is None
            else f"{m:.1f} MiB (anonymous: {anon.get((256, op, 'wasm-oci'), 0):.1f} MiB)",
            None if m is None else m < 64,
        )
    )
first = median(256, "push", "wasm-oci")
for mode in ("same-tag", "new-tag"):
    again = times.get((256, "repush"), {}).get(mode)
    sent = repush.get((256, mode))
    if again is None or sent is None or first is None:
        targets.append((f"re-push of 256 MiB ({mode.replace('-', ' ')}): the layer not sent again, under 25% of the first push", "not measured", None))
        continue
    share = again["median"] / first
    uploads, read, layer = int(sent[1]), int(sent[2]), int(sent[3])
    what = "layer sent" if layer else "layer not sent"
    targets.append(
        (
            f"re-push of 256 MiB ({mode.replace('-', ' ')}): the layer not sent again, under 25% of the first push",
            f"{uploads} blob upload requests ({what}), registry read {read / 1024:.0f} KiB; "
            f"{again['median']:.3f} s = {share:.1%} of {first:.3f} s",
            # A new tag is a new manifest (its version annotation) and so a new provenance
            # statement: a small blob. What must not go again is the layer.
            not layer and read < (1 << 20) and share < 0.25,
        )
    )
up = startup and next(iter(startup.values()))
targets.append(
    (
        "`wasm-oci --version` under 5 ms",
        "not measured" if not up else f"{up['median'] * 1000:.2f} ms",
        None if not up else up["median"] * 1000 < 5,
    )
)
if "image" in image:
    targets.append(
        (
            "slim image under 20 MB",
            f"{image['image'] / 1e6:.2f} MB ({image['image'] / MiB:.2f} MiB), as `podman image inspect` reports it",
            image["image"] < 20e6,
        )
    )
elif "binary" in image:
    total = image["binary"] + image["certs"]
    targets.append(
        (
            "slim image under 20 MB",
            f"{total / 1e6:.2f} MB: the static binary and the CA certificates the slim stage copies "
            "(the image itself was not built)",
            total < 20e6,
        )
    )
else:
    targets.append(("slim image under 20 MB", "not measured", None))

w("## Targets")
w("")
w("| target | measured | met? |")
w("|:---|:---|:---|")
for name, measured, ok in targets:
    w(f"| {name} | {measured} | {yes(ok)} |")
w("")

# --- push and pull, per size ---
for size, nbytes, digest, runs in modules:
    w(f"## {size} MiB module")
    w("")
    w(f"{nbytes:,} bytes, `{digest}`; {runs} runs per command.")
    w("")
    for op in ("push", "pull"):
        results = times.get((size, op), {})
        w(f"{op.capitalize()}:")
        w("")
        w("| peer | median (s) | min – max (s) | MiB/s | ratio to curl floor | peak RSS (MiB) | anonymous (MiB) |")
        w("|:---|---:|---:|---:|---:|---:|---:|")
        for peer in peers:
            r = results.get(peer)
            if r is None:
                continue
            spread = f"{r['min']:.3f} – {r['max']:.3f}"
            rate = nbytes / MiB / r["median"]
            w(
                f"| {peer} | {fmt_s(r['median'])} | {spread} | {rate:.0f} | "
                f"{fmt_ratio(ratio(size, op, peer))} | {fmt_mib(rss.get((size, op, peer)))} | "
                f"{fmt_mib(anon.get((size, op, peer)))} |"
            )
        w("")

# --- re-push ---
if any(k[1] == "repush" and v for k, v in times.items()):
    w("## Re-push of an unchanged artifact")
    w("")
    w("`wasm-oci push` of the same module again, the registry holding the first push.")
    w("")
    w("| size | tag | median (s) | of the first push | requests | blob upload requests | layer sent? | registry read (KiB) |")
    w("|---:|:---|---:|---:|---:|---:|:---|---:|")
    for size, *_ in modules:
        first = median(size, "push", "wasm-oci")
        for mode in ("same-tag", "new-tag"):
            r = times.get((size, "repush"), {}).get(mode)
            sent = repush.get((size, mode))
            if r is None or sent is None:
                continue
            share = f"{r['median'] / first:.1%}" if first else "—"
            w(
                f"| {size} MiB | {mode.replace('-', ' ')} | {fmt_s(r['median'])} | {share} | {sent[0]} | "
                f"{sent[1]} | {'yes' if int(sent[3]) else 'no'} | {int(sent[2]) / 1024:.0f} |"
            )
    w("")
    largest = max((k[0] for k in repush), default=None)
    for mode in ("same-tag", "new-tag"):
        sent = repush.get((largest, mode))
        if not sent or len(sent) < 5:
            continue
        w(f"The requests of one {largest} MiB re-push ({mode.replace('-', ' ')}), from the access log (query strings cut):")
        w("")
        w("```")
        for req in sent[4].split(","):
            w(req)
        w("```")
        w("")

# --- start-up and image ---
w("## Start-up and image")
w("")
if up:
    w(
        f"- `wasm-oci --version`: median {up['median'] * 1000:.2f} ms "
        f"(min {up['min'] * 1000:.2f}, max {up['max'] * 1000:.2f}; {len(up['times'])} runs, "
        "`hyperfine -N --warmup 5`, no shell)."
    )
if "binary" in image:
    w(
        f"- The static musl binary (`cargo build --release --locked --target x86_64-unknown-linux-musl`): "
        f"{image['binary'] / 1e6:.2f} MB ({image['binary'] / MiB:.2f} MiB); the CA certificates "
        f"the slim stage copies: {image['certs'] / 1e6:.2f} MB."
    )
if "image" in image:
    w(
        f"- The slim image (`podman build --target slim --build-context bin=DIR`, the Dockerfile's "
        f"`FROM scratch` stage with that binary and the certificates): {image['image'] / 1e6:.2f} MB "
        f"({image['image'] / MiB:.2f} MiB) uncompressed."
    )
w("")

# --- the commands ---
w("## Commands")
w("")
w("Exactly as hyperfine runs them (`--shell bash`), with `BIN` the release build of `wasm-oci`, `HOST`")
w("the registry (`127.0.0.1:PORT`),")
w("`MODULE` the module, `DIGEST` its sha256, `LAYOUT` an OCI layout of the same artifact made once by")
w("`wasm-oci push $MODULE oci:$LAYOUT:bench`, `OUT` the output path (deleted before each run),")
w("`ORAS_PY` the Python of a venv with `oras` and `bench/oras-py.py`.")
w("")
for peer in peers:
    w(f"{peer}:")
    w("")
    w("```sh")
    w(commands[(peer, "push")])
    if (peer, "pull") in commands:
        w(commands[(peer, "pull")])
    w("```")
    w("")
if ("re-push", "same-tag") in commands:
    w("Re-push (same tag, then a new tag each run):")
    w("")
    w("```sh")
    w(commands[("re-push", "same-tag")])
    w(commands[("re-push", "new-tag")])
    w("```")
print("\n".join(out))
