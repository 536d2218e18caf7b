"""Read and write envtool.lock (TOML through tomli-w; keys in a stable order)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envtool._util.atomic import write_atomic
from envtool.errors import Location, SpecError
from envtool.lock import VERSION

if TYPE_CHECKING:                      # pydantic is imported by the functions that need the model
    from envtool.lock.model import Lock


FILENAME = "envtool.lock"
HEADER = "# envtool.lock: written by `envtool lock`; commit it. Do not edit by hand.\n"


def path_for(project_dir: Path) -> Path:
    return project_dir / FILENAME


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SpecError(f"cannot read the lock file: {e}", location=Location(str(path)),
                        hint="run `envtool lock` to write it again") from None
    if data.get("version") != VERSION:
        raise SpecError(f"lock file version {data.get('version')!r} is not supported (expected {VERSION})",
                        location=Location(str(path)), hint="run `envtool lock` with this envtool")
    return data


def image_digests(path: Path) -> dict[str, str]:
    """Image name → locked manifest digest, read without the model (for `images`)."""
    if not path.exists():
        return {}
    images = _read_toml(path).get("images")
    return {name: entry["digest"] for name, entry in (images.items() if isinstance(images, dict) else ())
            if isinstance(entry, dict) and isinstance(entry.get("digest"), str)}


def read(path: Path) -> Lock | None:
    from pydantic import ValidationError

    from envtool.lock.model import Lock

    if not path.exists():
        return None
    data = _read_toml(path)
    try:
        return Lock.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise SpecError(f"invalid lock file: {key}: {first['msg'].lower()}", location=Location(str(path)),
                        hint="run `envtool lock` to write it again") from None


def write(path: Path, lock: Lock) -> None:
    import tomli_w

    data = lock.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    data["images"] = {k: data["images"][k] for k in sorted(data["images"])}
    write_atomic(path, HEADER + tomli_w.dumps(data))
