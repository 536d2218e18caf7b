"""Read and write envtool.lock (TOML through tomli-w; keys in a stable order)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w
from pydantic import ValidationError

from envtool._util.atomic import write_atomic
from envtool.errors import Location, SpecError
from envtool.lock.model import VERSION, Lock

FILENAME = "envtool.lock"
HEADER = "# envtool.lock: written by `envtool lock`; commit it. Do not edit by hand.\n"


def path_for(project_dir: Path) -> Path:
    return project_dir / FILENAME


def read(path: Path) -> Lock | None:
    if not path.exists():
        return None
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SpecError(f"cannot read the lock file: {e}", location=Location(str(path)),
                        hint="run `envtool lock` to write it again") from None
    if data.get("version") != VERSION:
        raise SpecError(f"lock file version {data.get('version')!r} is not supported (expected {VERSION})",
                        location=Location(str(path)), hint="run `envtool lock` with this envtool")
    try:
        return Lock.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise SpecError(f"invalid lock file: {key}: {first['msg'].lower()}", location=Location(str(path)),
                        hint="run `envtool lock` to write it again") from None


def write(path: Path, lock: Lock) -> None:
    data = lock.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    data["images"] = {k: data["images"][k] for k in sorted(data["images"])}
    write_atomic(path, HEADER + tomli_w.dumps(data))
