#!/usr/bin/env python3
"""The latency benchmark: each client's jobs against a CNCF registry put 30 or 100 ms of round
trip away by bench/latency-proxy.py; writes the Markdown section of BENCHMARKS.md to stdout.

Run by scripts/bench-latency.sh, which builds what it needs and sets, in the environment:
BIN (wasm-oci), SEED (the sample crate's module), WORK (a scratch directory), ORAS_PY (the
oras-py command, or empty), RTTS ("30 100"), SIZES ("seed 64"), MODES ("http https-token"),
RUNS (3)."""
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ["BIN"]
SEED = os.environ["SEED"]
WORK = os.environ["WORK"]
ORAS_PY = os.environ.get("ORAS_PY", "")
RTTS = [int(x) for x in os.environ.get("RTTS", "30 100").split()]
SIZES = os.environ.get("SIZES", "seed 64").split()
MODES = os.environ.get("MODES", "http https-token").split()
RUNS = int(os.environ.get("RUNS", "3"))
SERVICE, ISSUER = "bench-registry", "bench-issuer"
USER, PASSWORD = "bench", "bench-password"
TAGS = "1.2.3,1.2,1,latest,sha-0123abc"


def log(msg):
    print(f"bench-latency: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, env=None, check=True):
    return subprocess.run(cmd, shell=True, env=env, check=check, stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(WORK, "peers.log"), "a"), executable="/bin/bash")


def wait_http(url, ca=None):
    for _ in range(500):
        probe = ["curl", "-s", "-o", "/dev/null", url]
        if ca:
            probe[1:1] = ["--cacert", ca]
        if subprocess.run(probe).returncode == 0:
            return
        time.sleep(0.02)
    raise SystemExit(f"bench-latency: {url} did not answer")


def openssl(*args):
    subprocess.run(["openssl", *args], cwd=WORK, check=True, capture_output=True)


def certificates():
    """A test CA and a leaf for 127.0.0.1 (the proxy's TLS), and the token signing key."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=bench-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    with open(os.path.join(WORK, "leaf.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "leaf.crt", "-days", "2", "-extfile", "leaf.ext")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=bench-token-issuer", "-keyout", "token.key", "-out", "token.crt")
    # skopeo reads a directory of CA certificates.
    os.makedirs(os.path.join(WORK, "certs.d"), exist_ok=True)
    shutil.copy(os.path.join(WORK, "ca.crt"), os.path.join(WORK, "certs.d", "ca.crt"))


class Setup:
    """A registry (and for https-token a token endpoint) behind a proxy RTT ms away."""

    def __init__(self, rtt, mode):
        self.rtt, self.mode = rtt, mode
        self.tls = mode == "https-token"
        self.procs = []
        reg_port, self.port = free_port(), free_port()
        self.host = f"127.0.0.1:{self.port}"
        data = os.path.join(WORK, f"data-{rtt}-{mode}")
        shutil.rmtree(data, ignore_errors=True)
        config = [
            "version: 0.1",
            "log: {level: error, accesslog: {disabled: true}}",
            f"storage: {{filesystem: {{rootdirectory: {data}}}, delete: {{enabled: true}}}}",
            f"http: {{addr: 127.0.0.1:{reg_port}, secret: bench"
            + (f", host: 'https://{self.host}'" if self.tls else "") + "}",
        ]
        routes = []
        if self.tls:
            token_port = free_port()
            self.spawn([sys.executable, os.path.join(HERE, "latency-token.py"), str(token_port),
                        os.path.join(WORK, "token.key"), os.path.join(WORK, "token.crt"),
                        SERVICE, ISSUER])
            config += [
                "auth:",
                "  token:",
                f"    realm: https://{self.host}/token",
                f"    service: {SERVICE}",
                f"    issuer: {ISSUER}",
                f"    rootcertbundle: {os.path.join(WORK, 'token.crt')}",
            ]
            routes = ["--route", f"/token=127.0.0.1:{token_port}"]
        path = os.path.join(WORK, f"registry-{rtt}-{mode}.yml")
        with open(path, "w") as f:
            f.write("\n".join(config) + "\n")
        self.spawn(["docker-registry", "serve", path])
        wait_http(f"http://127.0.0.1:{reg_port}/v2/")
        self.events = os.path.join(WORK, f"events-{rtt}-{mode}.jsonl")
        open(self.events, "w").close()
        proxy = [sys.executable, os.path.join(HERE, "latency-proxy.py"), "--listen", str(self.port),
                 "--upstream", f"127.0.0.1:{reg_port}", "--one-way-ms", str(rtt / 2),
                 "--events", self.events, *routes]
        if self.tls:
            proxy += ["--tls", os.path.join(WORK, "leaf.crt"), os.path.join(WORK, "leaf.key")]
        self.spawn(proxy)
        scheme = "https" if self.tls else "http"
        wait_http(f"{scheme}://{self.host}/v2/", os.path.join(WORK, "ca.crt"))

    def spawn(self, cmd):
        self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                           stderr=open(os.path.join(WORK, "servers.log"), "a")))

    def stop(self):
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
            p.wait()

    def env(self):
        env = dict(os.environ, SOURCE_DATE_EPOCH="0")
        if self.tls:
            # oras-py (requests), wkg (rustls-native-certs) read the CA from here.
            env.update(REQUESTS_CA_BUNDLE=os.path.join(WORK, "ca.crt"),
                       SSL_CERT_FILE=os.path.join(WORK, "ca.crt"),
                       ORAS_PY_TLS="1", ORAS_PY_USER=USER, ORAS_PY_PASSWORD=PASSWORD)
        return env

    def commands(self):
        """Each peer's job: {(peer, job): command}, with REPO, MODULE, LAYOUT, DIGEST, OUT
        filled in by the caller."""
        h = self.host
        if self.tls:
            ours = f"--ca-file {WORK}/ca.crt --username {USER} --password {PASSWORD}"
            sk_dst = f"--dest-cert-dir {WORK}/certs.d --dest-creds {USER}:{PASSWORD}"
            sk_src = f"--src-cert-dir {WORK}/certs.d --src-creds {USER}:{PASSWORD}"
            wkg = f"-u {USER} -p {PASSWORD}"
        else:
            ours = "--insecure"
            sk_dst, sk_src = "--dest-tls-verify=false", "--src-tls-verify=false"
            wkg = f"--insecure {h}"
        c = {
            ("wasm-oci", "push, default job"): f"{BIN} push $MODULE {h}/$REPO --tags {TAGS} {ours}",
            ("wasm-oci", "push, 1 tag"): f"{BIN} push $MODULE {h}/$REPO:bench --provenance false {ours}",
            ("wasm-oci", "pull"): f"{BIN} pull {h}/$REPO@$DIGEST -o $OUT {ours}",
            ("wasm-oci", "verify"): f"{BIN} verify {h}/$REPO@$DIGEST {ours}",
            ("skopeo", "push, 1 tag"): f"skopeo copy -q {sk_dst} oci:$LAYOUT:bench docker://{h}/$REPO:bench",
            ("skopeo", "pull"): f"skopeo copy -q {sk_src} docker://{h}/$REPO@$DIGEST oci:$OUT:bench",
        }
        if shutil.which("wkg"):
            c[("wkg", "push, 1 tag")] = f"wkg oci push {wkg} {h}/$REPO:bench $MODULE"
            c[("wkg", "pull")] = f"wkg oci pull {wkg} {h}/$REPO@$DIGEST -o $OUT"
        if ORAS_PY:
            c[("oras-py", "push, 1 tag")] = f"{ORAS_PY} push {h}/$REPO:bench $MODULE"
            c[("oras-py", "pull")] = f"{ORAS_PY} pull {h}/$REPO@$DIGEST $OUT"
        return c


def read_events(path, offset):
    with open(path) as f:
        f.seek(offset)
        return [json.loads(line) for line in f if line.strip()]


def waves(events, tls):
    """The round-trip waves of one run (see BENCHMARKS.md): each connection's handshakes and
    each request is a step; a step's wave is one more than the highest wave among the answers
    the client had received in full when it began; a connection's first request waits for its
    handshakes (TCP, and TLS)."""
    conns = {e["conn"]: e for e in events if e["type"] == "conn"}
    requests = sorted((e for e in events if e["type"] == "request"), key=lambda e: e["start"])
    answered = []  # (done, wave)

    def before(t):
        return max((w for done, w in answered if done <= t), default=0)

    ready = {}
    for c, e in conns.items():
        ready[c] = before(e["t"]) + (2 if tls else 1)
    highest = 0
    for r in requests:
        if r["conn"] not in ready:
            continue
        wave = 1 + max(ready[r["conn"]], before(r["start"]))
        r["wave"] = wave
        answered.append((r["done"], wave))
        highest = max(highest, wave)
        # handshakes of connections opened later are computed against answers so far
        for c, e in conns.items():
            if e["t"] >= r["done"]:
                ready[c] = max(ready[c], before(e["t"]) + (2 if tls else 1))
    return highest, max(ready.values(), default=0)


def last_error():
    """The last line of the clients' log that says what went wrong."""
    lines = open(os.path.join(WORK, "peers.log"), errors="replace").read().splitlines()
    for line in reversed(lines):
        if any(w in line.lower() for w in ("error", "failed", "unauthorized")):
            return line.strip()[:160]
    return lines[-1].strip()[:160] if lines else "no message"


def measure(setup, cmd, env, prepare, runs):
    """Median wall time, and the requests and waves of the median run."""
    results = []
    for i in range(runs):
        local = prepare(i)
        full = cmd
        for k, v in local.items():
            full = full.replace(f"${k}", v)
        offset = os.path.getsize(setup.events)
        started = time.monotonic()
        proc = run(full, env=env, check=False)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            log(f"failed ({proc.returncode}): {full}")
            return {"failed": last_error()}
        time.sleep(0.05 + setup.rtt / 1000)  # the proxy writes a request's line after its answer
        events = read_events(setup.events, offset)
        n = sum(1 for e in events if e["type"] == "request")
        w, _ = waves(events, setup.tls)
        conns = sum(1 for e in events if e["type"] == "conn")
        paths = [f"{e['method']} {e['path']} {e.get('status', '')}".strip()
                 for e in sorted((e for e in events if e["type"] == "request"), key=lambda e: e["start"])]
        results.append({"wall": wall, "requests": n, "waves": w, "conns": conns, "paths": paths,
                        "command": full})
    results.sort(key=lambda r: r["wall"])
    median = results[len(results) // 2]
    median["min"], median["max"] = results[0]["wall"], results[-1]["wall"]
    return median


def main():
    certificates()
    modules = {}
    for size in SIZES:
        if size == "seed":
            modules[size] = SEED
        else:
            out = os.path.join(WORK, f"bench-{size}.wasm")
            subprocess.run([sys.executable, os.path.join(HERE, "gen-module.py"), size, out, "data"], check=True)
            modules[size] = out
    rows = []
    for rtt in RTTS:
        for mode in MODES:
            setup = Setup(rtt, mode)
            try:
                env = setup.env()
                cmds = setup.commands()
                for size, module in modules.items():
                    digest = "sha256:" + subprocess.run(["sha256sum", module], capture_output=True, text=True, check=True).stdout.split()[0]
                    layout = os.path.join(WORK, f"layout-{size}")
                    if not os.path.isdir(layout):
                        run(f"{BIN} push {module} oci:{layout}:bench", env=dict(os.environ, SOURCE_DATE_EPOCH="0"))
                    base = {"MODULE": module, "LAYOUT": layout}
                    for (peer, job), cmd in cmds.items():
                        log(f"{rtt} ms {mode} {size}: {peer} {job}")
                        slug = f"{peer}-{job.split(',')[0]}-{size}".replace(" ", "")
                        if job.startswith("push"):
                            def prepare(i, slug=slug, job=job):
                                return dict(base, REPO=f"bench/{slug}-{job[6:].replace(' ', '').replace(',', '')}-{i}", OUT="")
                        else:
                            # Read from a repository that holds the peer's own push (ours for verify).
                            src_peer = "wasm-oci" if peer == "wasm-oci" else peer
                            push_job = "push, default job" if peer == "wasm-oci" else "push, 1 tag"
                            repo = f"bench/src-{src_peer}-{size}"
                            if not getattr(setup, f"pushed_{src_peer}_{size}".replace("-", "_"), False):
                                src = cmds[(src_peer, push_job)].replace("$MODULE", module).replace("$LAYOUT", layout).replace("$REPO", repo)
                                if run(src, env=env, check=False).returncode != 0:
                                    rows.append(dict(failed=f"its push failed: {last_error()}", rtt=rtt, mode=mode,
                                                     size=size, peer=peer, job=job))
                                    continue
                                setattr(setup, f"pushed_{src_peer}_{size}".replace("-", "_"), True)
                            mdigest = resolve_digest(setup, repo, "1.2.3" if peer == "wasm-oci" else "bench")

                            def prepare(i, repo=repo, mdigest=mdigest):
                                out = os.path.join(WORK, "out")
                                shutil.rmtree(out, ignore_errors=True)
                                if os.path.exists(out):
                                    os.remove(out)
                                return dict(base, REPO=repo, DIGEST=mdigest, OUT=out)
                        r = measure(setup, cmd, env, prepare, RUNS)
                        if "failed" in r:
                            rows.append(dict(r, rtt=rtt, mode=mode, size=size, peer=peer, job=job))
                            continue
                        rows.append(dict(r, rtt=rtt, mode=mode, size=size, peer=peer, job=job,
                                         module=module, digest=digest))
            finally:
                setup.stop()
    json.dump(rows, open(os.path.join(WORK, "results.json"), "w"), indent=1)
    report(rows, modules)


def digest_from(headers):
    for line in headers.splitlines():
        if line.lower().startswith("docker-content-digest:"):
            return line.split(":", 1)[1].strip()
    return None


def resolve_digest(setup, repo, tag):
    """The manifest digest behind `tag`, asked with a token when the registry wants one."""
    scheme = "https" if setup.tls else "http"
    url = f"{scheme}://{setup.host}/v2/{repo}/manifests/{tag}"
    bearer = ""
    if setup.tls:
        token = subprocess.run(["curl", "-fsS", "--cacert", f"{WORK}/ca.crt", "-u", f"{USER}:{PASSWORD}",
                                f"https://{setup.host}/token?service={SERVICE}&scope=repository:{repo}:pull"],
                               capture_output=True, text=True, check=True).stdout
        bearer = json.loads(token)["token"]
    out = subprocess.run(["curl", "-fsS", "--cacert", f"{WORK}/ca.crt", "-H",
                          "Accept: application/vnd.oci.image.manifest.v1+json", "-H", f"Authorization: Bearer {bearer}",
                          "-o", "/dev/null", "-D", "-", url], capture_output=True, text=True)
    d = digest_from(out.stdout)
    if not d:
        raise SystemExit(f"bench-latency: no digest for {repo}:{tag}: {out.stderr}")
    return d


def report(rows, modules):
    p = print
    p("## Latency: a registry 30 and 100 ms away")
    p()
    p("Written by `bash scripts/bench-latency.sh` (`RUNS=N`, default 3; `RTTS`, `SIZES`, `MODES` to narrow it).")
    p("Every client reaches the CNCF registry through `bench/latency-proxy.py`, which holds every byte")
    p("half the round trip in each direction and makes a new connection wait one round trip (the TCP")
    p("handshake), and one more over TLS (TLS 1.3). `http`: plain HTTP, no credentials.")
    p("`https-token`: TLS ended at the proxy (ALPN `http/1.1`), the registry in `auth: token` mode")
    p("answering `WWW-Authenticate: Bearer`, and its token endpoint (`bench/latency-token.py`) on the")
    p("same host under `/token`, as ghcr.io has it; every client logs in with a user name and password.")
    p()
    p("- **wall**: the median of the runs (min – max), the whole command, start-up included.")
    p("- **round trips**: wall time divided by the round trip: what the issue's targets count.")
    p("- **requests**: HTTP requests that crossed the proxy (token requests included), in the median run.")
    p("- **waves**: the longest chain of steps each of which had to wait for the one before it, counted")
    p("  at the proxy. A step is a request or a new connection's handshake (one for TCP, one more for")
    p("  TLS). A request's wave is one more than the highest wave among the answers its client had")
    p("  received in full when the request's first byte arrived at the proxy, and at least one more than")
    p("  its connection's handshakes; a handshake's wave is one more than the highest wave answered")
    p("  before the connection was opened. Requests sent together before any of them is answered share")
    p("  a wave. With nothing else on the path, wall time ≈ waves × round trip plus the client's own work.")
    p("- Pushes go into an empty repository each run; pull and verify read the manifest by digest from")
    p("  a repository holding that client's own push (wasm-oci's default job for wasm-oci's).")
    p("- Peers: `skopeo copy` from an OCI layout of the same artifact, `wkg oci push|pull`, oras-py's")
    p("  `push|pull` (bench/oras-py.py); each pushes one tag and no provenance. No peer verifies.")
    p()
    targets = [
        ("http", "push, default job", 10), ("https-token", "push, default job", 13),
        ("http", "pull", 5), ("http", "verify", 8),
    ]
    found = [(r, limit) for mode, job, limit in targets for r in rows
             if r["peer"] == "wasm-oci" and r["size"] == "seed" and r["mode"] == mode
             and r["job"] == job and "failed" not in r]
    if found:
        p("Targets (the sample crate's module; round trips of wall time):")
        p()
        p("| job | mode | round trip | target | measured | waves | met? |")
        p("|:---|:---|---:|---:|---:|---:|:---|")
        for r, limit in found:
            rt = r["wall"] * 1000 / r["rtt"]
            p(f"| {r['job']} | {r['mode']} | {r['rtt']} ms | at most {limit} | {rt:.1f} ({r['wall']:.3f} s) | "
              f"{r['waves']} | {'yes' if rt <= limit else 'no'} |")
        p()
    for size, module in modules.items():
        n = os.path.getsize(module)
        p(f"### {'The sample crate module' if size == 'seed' else size + ' MiB module'} ({n:,} bytes)")
        p()
        p("| round trip | mode | client | job | wall (s) | min – max (s) | round trips | requests | waves |")
        p("|---:|:---|:---|:---|---:|---:|---:|---:|---:|")
        for r in rows:
            if r["size"] != size:
                continue
            if "failed" in r:
                p(f"| {r['rtt']} ms | {r['mode']} | {r['peer']} | {r['job']} | failed: {r['failed'].replace('|', '/')} | | | | |")
                continue
            p(f"| {r['rtt']} ms | {r['mode']} | {r['peer']} | {r['job']} | {r['wall']:.3f} | "
              f"{r['min']:.3f} – {r['max']:.3f} | {r['wall'] * 1000 / r['rtt']:.1f} | {r['requests']} | {r['waves']} |")
        p()
    for r in rows:
        if ("failed" not in r and r["peer"] == "wasm-oci" and r["size"] == "seed" and r["rtt"] == RTTS[0]
                and r["job"] == "push, default job"):
            p(f"The requests of wasm-oci's {r['job']} ({r['mode']}, seed module, {r['rtt']} ms), in the order they began:")
            p()
            p("```")
            for line in r["paths"]:
                p(line)
            p("```")
            p()


main()
