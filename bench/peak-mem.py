#!/usr/bin/env python3
"""Runs a bash command under GNU time and prints two peaks, in KiB, tab-separated:
GNU time's maximum resident set (%M: the largest process, file pages it maps included) and the
largest anonymous resident memory (RssAnon) of any process of the command, sampled every 5 ms.
The second leaves out the page cache a process maps (a memory-mapped file), which %M counts.

Usage: peak-mem.py COMMAND (stdout goes to /dev/null, stderr is kept)"""
import os
import subprocess
import sys
import tempfile
import time


def children():
    """{pid: ppid} of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            out[int(name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def anon_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


with tempfile.NamedTemporaryFile("r") as rss:
    proc = subprocess.Popen(
        ["/usr/bin/time", "-f", "%M", "-o", rss.name, "bash", "-c", sys.argv[1]],
        stdout=subprocess.DEVNULL,
    )
    peak = 0
    while proc.poll() is None:
        parents = children()
        tree, grew = {proc.pid}, True
        while grew:
            more = {p for p, pp in parents.items() if pp in tree} - tree
            tree |= more
            grew = bool(more)
        peak = max([peak] + [anon_kib(p) for p in tree])
        time.sleep(0.005)
    if proc.returncode:
        sys.exit(f"peak-mem: the command failed ({proc.returncode})")
    print(f"{rss.read().strip().splitlines()[-1]}\t{peak}")
