"""The stack the last `up` of a project resolved, taken again while nothing it was made from changed.

`up -d` after an edit elsewhere (or after `down`) loads envtool.toml through pydantic (~120 ms, most
of what `up` does before its supervisor can start the first container) to arrive at the same
StackSpec as last time.  After a full `up`, its StackSpec (before secrets are read: those are read
at every `up`) is kept in the store (cache/recent/<project file>.up.json) with

- the project file's fingerprint (image/recent.py: its bytes and path, `.env`, `envtool.lock`, the
  ignore file, the variables it names and those that steer a build, envtool's version), the
  environment (`--env`), and the digests of the services' images (as image/recent.py records them:
  the copied files' stat data included);
- the facts about other files that the load and the conversion read: each `env_file`'s bytes,
  whether each watch path exists and where it resolves, where each bind source and the project
  directory resolve (symlinks), and HOME (a `~` in a bind source or a secret's file);
- the warnings the load gave.

The next plain `up -d` (no SERVICE, no --scale, a development environment, root) takes that stack
when all of it is the same, and loads the project otherwise.  tests/unit/stack/test_recent_up.py
changes each input in turn.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from envtool._util.atomic import write_atomic
from envtool._util.digest import sha256_bytes

VERSION = 1


def _path(cache_dir: Path, project_file: Path) -> Path:
    return cache_dir / "recent" / (sha256_bytes(str(project_file.resolve()).encode())[7:] + ".up.json")


def facts(project: Any, directory: Path) -> list[list[Any]]:
    """What the load's checks and the conversion read besides envtool.toml, .env and the lock (and
    HOME, which a `~` in a bind source or a secret's file stands for)."""
    out: list[list[Any]] = [["realpath", str(directory), os.path.realpath(directory)],
                            ["environ", "HOME", os.environ.get("HOME")]]
    for svc in project.services.values():
        for f in svc.env_file:
            p = directory / f
            out.append(["bytes", str(p), _digest(p)])
        for rule in svc.develop.watch if svc.develop else []:
            p = directory / rule.path
            out.append(["exists", str(p), p.exists()])
            out.append(["realpath", str(p), os.path.realpath(p)])
        for v in svc.volumes:
            if v.type == "bind":
                p = os.path.join(directory, os.path.expanduser(v.source or ""))
                out.append(["realpath", p, os.path.realpath(p)])
    return out


def _digest(path: Path) -> str | None:
    try:
        return sha256_bytes(path.read_bytes())
    except OSError:
        return None


def _holds(fact: list[Any]) -> bool:
    kind, path, value = fact
    if kind == "bytes":
        return bool(_digest(Path(path)) == value)
    if kind == "exists":
        return os.path.exists(path) == value
    if kind == "environ":
        return os.environ.get(path) == value
    return bool(os.path.realpath(path) == value)


def _key(fingerprint: str, env: str | None, images: dict[str, str]) -> str:
    return sha256_bytes(json.dumps([VERSION, fingerprint, env, sorted(images.items())]).encode())


def record(cache_dir: Path, project_file: Path, fingerprint: str, env: str | None, images: dict[str, str],
           stack: dict[str, Any], warnings: list[str], found: list[list[Any]]) -> None:
    """images: the services' recipe names → manifest digests this stack runs."""
    doc = {"key": _key(fingerprint, env, images), "images": images, "stack": stack, "warnings": warnings,
           "facts": found}
    write_atomic(_path(cache_dir, project_file), json.dumps(doc, sort_keys=True))


def lookup(cache_dir: Path, project_file: Path, fingerprint: str, env: str | None,
           images: dict[str, str] | None) -> dict[str, Any] | None:
    """The kept {"stack", "warnings"} when everything it was made from is as it was; else None.
    images: the recipe names → digests image/recent.py finds now (None: not all found)."""
    if images is None:
        return None
    try:
        doc = json.loads(_path(cache_dir, project_file).read_text())
        if doc["key"] != _key(fingerprint, env, images) or not all(_holds(f) for f in doc["facts"]):
            return None
        return {"stack": doc["stack"], "warnings": list(doc["warnings"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def recipe_names(cache_dir: Path, project_file: Path) -> list[str] | None:
    """The recipes the kept stack's services run (to look their images up before anything else)."""
    try:
        return sorted(json.loads(_path(cache_dir, project_file).read_text())["images"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
