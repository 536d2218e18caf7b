"""What a project's image recipe was last built to, and whether anything it was built from changed.

`envtool run NAME` in a project directory means "build recipe NAME from envtool.lock, then run it".
Done in full, that loads the project (pydantic, ~150 ms), checks the lock, and builds: every step
is cached, but a `copy` step reads and hashes every copied file again to know that.  After such a
build, this module keeps one record per project file in the store (cache/recent/):

- a fingerprint of everything the load and the build read that is not a copied file: the project
  file's bytes and path, its directory's `.env` and `envtool.lock`, the ignore file, the values of
  the environment variables the file names (`$X`, `${X...}`) and of those that steer a build
  (SOURCE_DATE_EPOCH, ENVTOOL_*), and envtool's version;
- per recipe built: the manifest digest, and a signature of the files its `copy` steps read (and
  those of the recipes it builds on): every file's type, mode, owner, size, inode, mtime and ctime
  (any write, chmod, chown or xattr change moves the ctime), every directory's mode, owner and
  xattrs, walked as the copy walks it (the ignore file applied).

The next `run NAME` takes the recorded digest when the fingerprint and the signature are what they
were (a walk of stat calls, no reads), and does the full load and build otherwise, recording again.
A file changed within the clock's granularity after it was signed would keep its mtime, so no record
is written while any input is less than RACY_NS old (git's "racily clean" rule), and the signature
is taken before the build as well as after, and the record kept only when both agree.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

from envtool._util.atomic import write_atomic
from envtool._util.digest import sha256_bytes
from envtool._util.ignore import read_patterns, walk_sorted

VERSION = 1
RACY_NS = 2_000_000_000
_VARIABLE = re.compile(rb"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_ESCAPED_DOLLAR = re.compile(rb"\\(u0024|U00000024)", re.IGNORECASE)
STEERING = ("SOURCE_DATE_EPOCH",)                 # and every ENVTOOL_* variable


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def fingerprint(project_file: Path, environ: dict[str, str] | None = None, lock: bool = True) -> str | None:
    """The digest of what a load and a locked build of this project read besides copied files, or
    None where it cannot be told from the bytes (a `$` written as a TOML escape)."""
    from envtool import __version__

    env = os.environ if environ is None else environ
    project_file = project_file.resolve()
    directory = project_file.parent
    text = _read(project_file)
    if text is None or _ESCAPED_DOLLAR.search(text):
        return None
    dotenv = _read(directory / ".env")
    names = set(_VARIABLE.findall(text)) | set(_VARIABLE.findall(dotenv or b""))
    variables = {n.decode(): env.get(n.decode()) for n in names}
    variables |= {k: v for k, v in env.items() if k.startswith("ENVTOOL_") or k in STEERING}
    parts: dict[str, Any] = {
        "version": VERSION, "envtool": __version__, "file": str(project_file),
        "text": sha256_bytes(text), "dotenv": None if dotenv is None else sha256_bytes(dotenv),
        "lock": _digest_or_none(_read(directory / "envtool.lock")) if lock else "-",
        "ignore": read_patterns(str(directory)), "environ": sorted(variables.items(), key=lambda kv: kv[0]),
    }
    return sha256_bytes(json.dumps(parts, sort_keys=True).encode())


def _digest_or_none(data: bytes | None) -> str | None:
    return None if data is None else sha256_bytes(data)


def signature(directory: Path, sources: list[str]) -> tuple[str, int]:
    """(digest of the stat data of every path the copies of `sources` walk, newest m/ctime in ns)."""
    patterns = read_patterns(str(directory))
    newest = 0
    lines: list[str] = []

    def add(rel: str, path: str) -> None:
        nonlocal newest
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            lines.append(f"{rel}\0-")
            return
        if stat.S_ISDIR(st.st_mode):
            # adding or removing an entry moves a directory's times; the entry itself is in the
            # walk (or not), and the layer gives directories a fixed time: mode, owner, xattrs count
            lines.append(f"{rel}\0{st.st_mode}\0{st.st_uid}\0{st.st_gid}\0{_xattrs(path)}")
            return
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
        lines.append(f"{rel}\0{st.st_mode}\0{st.st_uid}\0{st.st_gid}\0{st.st_size}\0{st.st_dev}\0{st.st_ino}\0"
                     f"{st.st_mtime_ns}\0{st.st_ctime_ns}")

    for src in sources:
        path = str(directory / src)
        add(src, path)
        if os.path.isdir(path):
            for rel, full in walk_sorted(path, patterns, str(directory)):
                add(os.path.join(src, rel), full)
    return sha256_bytes("\n".join(lines).encode()), newest


def _xattrs(path: str) -> list[tuple[str, bytes]]:
    try:
        return sorted((k, os.getxattr(path, k, follow_symlinks=False))
                      for k in os.listxattr(path, follow_symlinks=False))
    except OSError:
        return []


def _record_path(cache_dir: Path, project_file: Path) -> Path:
    return cache_dir / "recent" / (sha256_bytes(str(project_file.resolve()).encode())[7:] + ".json")


def lookup(cache_dir: Path, project_file: Path, name: str, environ: dict[str, str] | None = None) -> str | None:
    """The manifest digest recipe `name` of this project was last built to, when nothing it was built
    from has changed since; else None."""
    try:
        doc = json.loads(_record_path(cache_dir, project_file).read_text())
        entry = doc["images"][name]
        if doc["fingerprint"] != fingerprint(project_file, environ):
            return None
        sig, _ = signature(project_file.resolve().parent, list(entry["copies"]))
        return str(entry["digest"]) if sig == entry["signature"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def copy_sources(recipes: dict[str, Any], name: str) -> list[str]:
    """The project paths a build of recipe `name` reads: its copies' sources and an oci-archive
    base, and those of the recipes it builds on or copies from."""
    from envtool.image.recipe import Copy, plan_recipe

    seen: set[str] = set()
    out: set[str] = set()
    todo = [name]
    while todo:
        n = todo.pop()
        if n in seen or n not in recipes:
            continue
        seen.add(n)
        plan = plan_recipe(n, recipes[n])
        if plan.base.kind == "image":
            todo.append(plan.base.ref)
        elif plan.base.kind == "oci-archive":
            out.add(plan.base.ref)
        for step in plan.steps:
            if isinstance(step, Copy):
                if step.source:
                    todo.append(step.source)
                else:
                    out.add(step.src)
    return sorted(out)


class Recorder:
    """Around one load and locked build: made before the load, `sign()` before the build, `record()`
    after it, which writes the record when nothing moved meanwhile and no copied file is too new
    to trust."""

    def __init__(self, cache_dir: Path, project_file: Path, environ: dict[str, str] | None = None) -> None:
        """Made before the project is loaded: the fingerprint is of the bytes the load reads."""
        self.cache_dir = cache_dir
        self.file = project_file.resolve()
        self.environ = environ
        self.before = fingerprint(self.file, environ, lock=False)
        self.copies: dict[str, list[str]] = {}
        self.signed: dict[str, str] = {}

    def lookup(self, names: list[str]) -> dict[str, str] | None:
        """The recorded digests of all of `names` when nothing changed since this object was made
        (so the project the caller loaded is the one the record describes), else None."""
        if self.before is None or fingerprint(self.file, self.environ, lock=False) != self.before:
            return None
        found = {n: lookup(self.cache_dir, self.file, n, self.environ) for n in names}
        return None if any(d is None for d in found.values()) else {n: str(d) for n, d in found.items()}

    def current(self) -> str | None:
        """The fingerprint (the lock as it is now) when nothing else changed since this object was
        made; else None."""
        if self.before is None or fingerprint(self.file, self.environ, lock=False) != self.before:
            return None
        return fingerprint(self.file, self.environ)

    def sign(self, recipes: dict[str, Any], names: list[str]) -> None:
        """Before the build: what the copies of `names` will read."""
        for n in names:
            self.copies[n] = copy_sources(recipes, n)
            self.signed[n] = signature(self.file.parent, self.copies[n])[0]

    def record(self, digests: dict[str, str]) -> bool:
        """The build may write envtool.lock (a recipe locked for the first time, or updated): that
        is part of what it did, so the lock counts as it is after the build."""
        if self.before is None or fingerprint(self.file, self.environ, lock=False) != self.before:
            return False
        after = fingerprint(self.file, self.environ)
        now = time.time_ns()
        path = _record_path(self.cache_dir, self.file)
        try:
            doc = json.loads(path.read_text())
            images = doc["images"] if doc.get("fingerprint") == after else {}
        except (OSError, ValueError, KeyError, TypeError):
            images = {}
        for name, digest in digests.items():
            copies = self.copies.get(name, [])
            sig, newest = signature(self.file.parent, copies)
            if name not in self.signed or sig != self.signed[name] or newest > now - RACY_NS:
                images.pop(name, None)
                continue
            images[name] = {"digest": digest, "copies": copies, "signature": sig}
        if not images:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"fingerprint": after, "images": images}, sort_keys=True))
        return True
