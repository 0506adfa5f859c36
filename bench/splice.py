#!/usr/bin/env python3
"""Puts one script's sections into BENCHMARKS.md and keeps every other script's.

Usage: splice.py OUT NEW (--own HEADING)... | --all-but HEADING...

The file is split at its `## ` headings (outside code fences); the text before the first one
is a section of its own, as are the `### ` subsections within theirs. A script owns some of
the sections: `--own HEADING` names each of them, `--all-but HEADING...` owns every section
but those named (the preamble included). The owned sections of OUT are replaced, all at once,
by the sections of NEW, where the first of them stood (at the end when OUT has none); the
other sections are kept as they were, byte for byte. A missing OUT is NEW.
"""
import os
import sys


def sections(text):
    """[(heading or None, text)]: the file cut before each `## ` heading outside a fence."""
    cut, fenced = [], False
    lines = text.splitlines(keepends=True)
    starts = [0]
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## ") and i > 0:
            starts.append(i)
    starts.append(len(lines))
    for a, b in zip(starts, starts[1:]):
        chunk = "".join(lines[a:b])
        first = lines[a].rstrip("\n") if a < len(lines) else ""
        cut.append((first if first.startswith("## ") else None, chunk))
    return [c for c in cut if c[1].strip()]


def join(parts):
    """The sections one blank line apart, the file ending in one newline."""
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def splice(old, new, owned):
    new_parts = [text for _, text in sections(new)]
    out, placed = [], False
    for heading, text in sections(old):
        if not owned(heading):
            out.append(text)
        elif not placed:
            out.extend(new_parts)
            placed = True
    if not placed:
        out.extend(new_parts)
    return join(out)


def main(argv):
    if len(argv) < 4 or argv[2] not in ("--own", "--all-but"):
        sys.exit(__doc__)
    out, new = argv[0], argv[1]
    if argv[2] == "--all-but":
        others = set(argv[3:])
        owned = lambda heading: heading not in others  # noqa: E731
    else:
        mine = set(argv[3::2]) if all(a == "--own" for a in argv[2::2]) else sys.exit(__doc__)
        owned = lambda heading: heading in mine  # noqa: E731
    old = open(out).read() if os.path.exists(out) else ""
    text = splice(old, open(new).read(), owned)
    with open(out + ".tmp", "w") as f:
        f.write(text)
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main(sys.argv[1:])
