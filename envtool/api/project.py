"""The project: loading envtool.toml, checking it, printing it, and naming it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envtool._util.record import dataclass
from envtool.errors import SpecError

if TYPE_CHECKING:
    from envtool.image.store import Store
    from envtool.spec.load import LoadedProject


def load_project(file: str | None = None, directory: str | None = None, env: str | None = None
                 ) -> LoadedProject:
    from envtool.spec.load import load

    return load(file, directory, env)


def validate(file: str | None = None, directory: str | None = None, env: str | None = None
             ) -> LoadedProject:
    """Load the project; without --env, also load it under every environment overlay so that
    cross-field checks (ports, replicas, volumes) hold in each one."""
    loaded = load_project(file, directory, env)
    if env is None:
        for name in loaded.project.environments:
            load_project(file, directory, name)
    return loaded


def config(file: str | None = None, directory: str | None = None, env: str | None = None) -> dict[str, Any]:
    """The merged, normalized stack as plain JSON-able data."""
    loaded = load_project(file, directory, env)
    data = loaded.project.model_dump(mode="json", by_alias=True, exclude_none=True)
    if env is not None:
        data.pop("environments", None)
    return data


def diff(a: str, b: str, file: str | None = None, directory: str | None = None) -> list[tuple[str, Any, Any]]:
    """What differs between two environments ('base' for none), key by key."""
    from envtool.spec.compare import differences

    def resolved(env: str) -> dict[str, Any]:
        data = config(file, directory, None if env == "base" else env)
        data.pop("environments", None)
        return data

    return differences(resolved(a), resolved(b))


def schema_text() -> str:
    from envtool.spec.schema import schema_text as text

    return text()


def init(directory: str | None = None, name: str | None = None, force: bool = False) -> Path:
    from envtool._util.names import project_name_from_dir, valid_project_name
    from envtool.spec.templates import STARTER

    base = Path(directory or os.getcwd())
    target = base / "envtool.toml"
    if target.exists() and not force:
        raise SpecError(f"{target} already exists", hint="pass --force to overwrite it")
    project = name or project_name_from_dir(base.resolve().name)
    if not valid_project_name(project):
        raise SpecError(f"invalid project name {project!r}", hint="use lowercase letters, digits, '-' and '_'")
    base.mkdir(parents=True, exist_ok=True)
    target.write_text(STARTER.format(name=project))
    return target


@dataclass(frozen=True)
class Context:
    """What every call of the facade works against: the store root and the project a `-p NAME`
    named, decided by the caller (the CLI, per command) rather than read from the environment by
    each function."""
    root: Path                      # the store: ENVTOOL_ROOT, default /var/lib/envtool
    project: str | None = None      # -p NAME: act on this project's stack, whatever the directory


_given: dict[str, Any] = {}         # what configure() was told; the rest comes from the environment


def configure(root: str | os.PathLike[str] | None = None, project: str | None = None) -> Context:
    """Set the context of the calls that follow (until `reset`); what is not given comes from the
    environment (ENVTOOL_ROOT, ENVTOOL_PROJECT)."""
    if root is not None:
        _given["root"] = Path(root)
    if project is not None:
        _given["project"] = project
    return context()


def reset() -> None:
    """Forget what configure() was told (the CLI does at the end of every command)."""
    _given.clear()


def context() -> Context:
    from envtool.image.store import DEFAULT_ROOT
    from envtool.runtime import rootless

    default = rootless.default_root() if rootless.unprivileged() else Path(DEFAULT_ROOT)
    return Context(_given.get("root") or Path(os.environ.get("ENVTOOL_ROOT") or default),
                   _given.get("project") or os.environ.get("ENVTOOL_PROJECT") or None)


def open_store() -> Store:
    from envtool.image.store import Store

    return Store(context().root)


def project_name(file: str | None = None, directory: str | None = None) -> str:
    """The project's name; falls back to the directory's name when envtool.toml cannot be read,
    so `down` and `ps` still work on a broken file."""
    from envtool._util.names import project_name_from_dir
    from envtool.spec.peek import project_name as peek_name

    named = context().project
    if named:                                        # -p NAME: a stack run from a bundle has no directory
        return named
    try:
        return peek_name(file, directory) or load_project(file, directory).name
    except SpecError:
        base = os.path.abspath(directory or os.getcwd())
        return project_name_from_dir(os.path.basename(base))


def strict_env(env: str | None) -> bool:
    """Outside development, a missing or mismatched lock is an error, never updated."""
    return env is not None and env not in ("dev", "development", "local")


def sha256_file(path: Path) -> str:
    from envtool._util.digest import sha256_bytes

    return sha256_bytes(path.read_bytes())


def project_paths(project: str) -> Any:
    """Where a project's stack lives in the store: state, control socket, logs."""
    from envtool.stack.state import Paths

    return Paths.for_project(open_store().root, project)
