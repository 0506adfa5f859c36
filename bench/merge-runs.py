#!/usr/bin/env python3
"""Merges hyperfine --export-json files of the same commands, run in rounds, into one:

    merge-runs.py OUT.json ROUND1.json ROUND2.json ...

Each command's times are concatenated in round order, and its statistics recomputed from them."""
import json
import statistics
import sys

out, *rounds = sys.argv[1:]
merged = {}
for name in rounds:
    with open(name) as f:
        for result in json.load(f)["results"]:
            into = merged.setdefault(result["command"], {"command": result["command"], "times": []})
            into["times"] += result["times"]
for result in merged.values():
    times = result["times"]
    result.update(
        mean=statistics.fmean(times),
        stddev=statistics.stdev(times) if len(times) > 1 else 0.0,
        median=statistics.median(times),
        min=min(times),
        max=max(times),
    )
with open(out, "w") as f:
    json.dump({"results": list(merged.values())}, f, indent=2)
