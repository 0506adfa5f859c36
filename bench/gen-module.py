#!/usr/bin/env python3
"""Writes a valid core Wasm module of about SIZE MiB. Usage: gen-module.py SIZE_MIB OUT [code|data]

code (default): like compiled Rust, the bulk is function bodies (1 MiB each, random constants).
data: one memory and a single active data segment of random bytes (embedded assets)."""
import os
import random
import sys


def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def sleb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        done = (n == 0 and not b & 0x40) or (n == -1 and b & 0x40)
        out.append(b if done else b | 0x80)
        if done:
            return bytes(out)


def section(sid, body):
    return bytes([sid]) + leb(len(body)) + body


size = int(sys.argv[1]) * 1024 * 1024
kind = sys.argv[3] if len(sys.argv) > 3 else "code"
rng = random.Random(7)
if kind == "data":
    data = os.urandom(size)
    memory = section(5, leb(1) + b"\x00" + leb(size // 65536 + 1))
    body = section(11, leb(1) + b"\x00\x41\x00\x0b" + leb(len(data)) + data)
    module = memory + body
else:
    per_func = 1024 * 1024
    funcs = max(1, size // per_func)
    # A pool of `i32.const k; drop` instructions, sampled to fill each body.
    pool = [b"\x41" + sleb(rng.randint(-(2**31), 2**31 - 1)) + b"\x1a" for _ in range(4096)]
    bodies = []
    for _ in range(funcs):
        code = bytearray(b"\x00")  # no locals
        while len(code) < per_func:
            code += rng.choice(pool)
        code += b"\x0b"
        bodies.append(leb(len(code)) + bytes(code))
    types = section(1, leb(1) + b"\x60\x00\x00")
    functions = section(3, leb(funcs) + b"\x00" * funcs)
    module = types + functions + section(10, leb(funcs) + b"".join(bodies))
with open(sys.argv[2], "wb") as f:
    f.write(b"\0asm\x01\0\0\0" + module)
