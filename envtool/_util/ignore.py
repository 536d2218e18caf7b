"""`.envtoolignore`: which project files `copy` leaves out of an image and the watcher leaves alone.

One rule set for both, Docker's: the project's `.envtoolignore`, or its `.dockerignore` when there
is none (Compose projects have one), plus what is never wanted (`.git`, envtool.lock,
envtool.releases.toml).  `.gitignore` is not read: what git does not track (a built `dist/`) is
often exactly what an image needs.  Patterns, one per line, `#` comments:

- `*.pyc`, `__pycache__/`  a pattern without a slash matches a name at any depth;
- `/dist`                  a leading slash anchors it at the project's root;
- `docs/*.md`              a pattern with a slash matches the path from the root;
- `!keep.pyc`              a `!` takes a path back in; the last matching line wins;
- a match on a directory takes everything under it.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator

ALWAYS_IGNORED = (".git", "/envtool.lock", "/envtool.releases.toml")
FILES = (".envtoolignore", ".dockerignore")      # the first that exists


def read_patterns(directory: str) -> list[str]:
    """The project's rule set (ALWAYS_IGNORED first, then the file's lines)."""
    out = list(ALWAYS_IGNORED)
    for name in FILES:
        try:
            with open(os.path.join(directory, name)) as f:
                out += [line.rstrip("\n") for line in f]
            break
        except OSError:
            continue
    return out


def ignored(rel: str, patterns: Iterable[str]) -> bool:
    """Whether the path `rel` (relative to the directory the patterns belong to, '/'-separated)
    is ignored; a path under an ignored directory is ignored too."""
    rel = rel.strip("/")
    if not rel or rel == ".":
        return False
    parts = rel.split("/")
    result = False
    for raw in patterns:
        p = raw.strip()
        if not p or p.startswith("#"):
            continue
        negate = p.startswith("!")
        if negate:
            p = p[1:]
        if _matches(p, rel, parts):
            result = not negate
    return result


def _matches(pattern: str, rel: str, parts: list[str]) -> bool:
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    p = pattern.strip("/")
    if not p:
        return False
    if anchored:           # against the path from the root, or one of its parent directories
        segments = p.split("/")
        return any(_segments_match(segments, parts[:i]) for i in range(1, len(parts) + 1))
    return any(fnmatch.fnmatchcase(part, p) for part in parts)


def _segments_match(pattern: list[str], path: list[str]) -> bool:
    """`*` stays within one path segment (as in git and Docker); `**` spans any number of them."""
    if not pattern:
        return not path
    if pattern[0] == "**":
        return any(_segments_match(pattern[1:], path[i:]) for i in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], pattern[0]) and _segments_match(pattern[1:], path[1:])


def walk_sorted(src: str, patterns: list[str], base: str | None = None) -> Iterator[tuple[str, str]]:
    """(path relative to src, absolute path) for everything under src, sorted, minus what the
    patterns ignore (ignored() above) — matched against the path relative to `base` (the project
    directory the patterns belong to), or to src."""
    prefix = os.path.relpath(src, base) if base else ""
    prefix = "" if prefix == "." else prefix

    def skip(rel: str) -> bool:
        return bool(patterns) and ignored(os.path.join(prefix, rel) if prefix else rel, patterns)

    for dirpath, dirnames, filenames in os.walk(src):
        rel_dir = os.path.relpath(dirpath, src)
        rel_dir = "" if rel_dir == "." else rel_dir
        dirnames[:] = sorted(d for d in dirnames if not skip(os.path.join(rel_dir, d)))
        for name in sorted(dirnames + filenames):
            rel = os.path.join(rel_dir, name)
            if name in filenames and skip(rel):
                continue
            yield rel, os.path.join(dirpath, name)
