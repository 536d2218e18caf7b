"""Finding envtool.toml, and reading its project name without loading the whole stack.

`ps`, `logs`, `down`, `stop` and friends need only the project's name; loading the file through
pydantic costs ~100 ms before they can answer.  `project_name` reads [project].name with tomllib
when it is a literal, valid name, and returns None where only the full load can tell (a name
with ${VAR}, a file that is not TOML); the caller then loads the project as usual.
"""

from __future__ import annotations

import os
from pathlib import Path

from envtool._util.names import project_name_from_dir, valid_project_name
from envtool.errors import SpecError

FILENAMES = ("envtool.toml",)


def find_file(file: str | os.PathLike[str] | None = None, directory: str | os.PathLike[str] | None = None
              ) -> Path:
    base = Path(directory) if directory else Path.cwd()
    if file:
        path = Path(file) if Path(file).is_absolute() else base / file
        if not path.is_file():
            raise SpecError(f"no such file: {path}", hint="check the -f/--file argument")
        return path
    for name in FILENAMES:
        if (base / name).is_file():
            return base / name
    raise SpecError(f"no envtool.toml in {base}", hint="run `envtool init` to create one, or pass -f FILE")


def project_name(file: str | os.PathLike[str] | None = None, directory: str | os.PathLike[str] | None = None
                 ) -> str | None:
    """The name the full load would give the project, or None when only the full load can tell."""
    import tomllib  # not for find_file alone (`run NAME` finds the file, reads no TOML)

    path = find_file(file, directory)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    section = data.get("project", {})
    if not isinstance(section, dict):
        return None
    name = section.get("name")
    if name is None:
        return project_name_from_dir(path.parent.resolve().name)
    if isinstance(name, str) and "$" not in name and valid_project_name(name):
        return name
    return None
