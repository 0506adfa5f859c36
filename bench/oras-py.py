#!/usr/bin/env python3
"""oras-py (the Python ORAS client from PyPI) as a peer: it has no command line of its own.

Usage: oras-py.py push HOST/REPO:TAG FILE
       oras-py.py pull HOST/REPO:TAG OUTDIR

Plain HTTP (insecure), unless ORAS_PY_TLS=1 (then HTTPS, with the CA bundle requests reads from
REQUESTS_CA_BUNDLE, and a login with ORAS_PY_USER and ORAS_PY_PASSWORD); the layer typed application/wasm and titled with the file name,
a monolithic upload (oras-py's default)."""
import os
import sys

import oras.client
from oras.logger import setup_logger

setup_logger(quiet=True)

op, target, path = sys.argv[1:4]
tls = os.environ.get("ORAS_PY_TLS") == "1"
client = oras.client.OrasClient(hostname=target.split("/", 1)[0], insecure=not tls)
if tls and os.environ.get("ORAS_PY_USER"):
    client.login(
        username=os.environ["ORAS_PY_USER"],
        password=os.environ["ORAS_PY_PASSWORD"],
        hostname=target.split("/", 1)[0],
    )
if op == "push":
    client.push(
        target=target,
        files=[f"{os.path.abspath(path)}:application/wasm"],
        disable_path_validation=True,
        quiet=True,
    )
elif op == "pull":
    if not client.pull(target=target, outdir=path):
        sys.exit("oras-py pulled no file")
else:
    sys.exit(__doc__)
