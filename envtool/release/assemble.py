"""A project as a release: its resolved stack in every environment (frozen: env files read, paths
fixed), its lock and the digests of its images — what a bundle carries and promotion compares."""

from __future__ import annotations

from typing import Any

from envtool.errors import SpecError
from envtool.image.store import Store
from envtool.release.bundle import Release, files_blob, frozen_config


def _frozen(loaded: Any) -> dict[str, Any]:
    from envtool.spec.interpolate import read_dotenv

    data = loaded.project.model_dump(mode="json", by_alias=True, exclude_none=True)
    env_files: dict[str, dict[str, str]] = {}
    for name, svc in loaded.project.services.items():
        for f in svc.env_file:
            env_files.setdefault(name, {}).update(read_dotenv((loaded.directory / f).read_text()))
    return frozen_config(data, env_files)


def reload(loaded: Any, env: str | None) -> Any:
    """The same project under another environment."""
    from envtool.spec.load import load

    return load(str(loaded.file.resolve()), str(loaded.directory.resolve()), env)


def release_for(loaded: Any, images: dict[str, Any], store: Store, envs: list[str] | None = None) -> Release:
    """The release the project is now: its resolved stack in every (or the named) environment, its
    lock, the digests of its images, and the files its bind mounts read."""
    from envtool.image.resolve import lock_path

    base = reload(loaded, None)
    names = environment_names(base, envs)
    stack = {"base": _frozen(base),
             "environments": {e: _frozen(reload(base, e)) for e in names}}
    lock_file = lock_path(base.directory)
    if not lock_file.exists():
        raise SpecError(f"no {lock_file.name} in {base.directory}", hint="run `envtool lock` and commit the file")
    files = files_blob(store, base.directory, [stack["base"], *stack["environments"].values()])
    return Release(base.name, stack, lock_file.read_bytes(),
                   {ref: img.manifest_digest for ref, img in sorted(images.items())}, files)


def environment_names(loaded: Any, envs: list[str] | None) -> list[str]:
    """The environments asked for (each must exist), or all of the project's."""
    known = list(loaded.project.environments)
    for e in envs or []:
        if e not in known:
            raise SpecError(f"no environment {e!r} in {loaded.file}", hint="environments: " + (", ".join(known) or "none"))
    return list(envs) if envs else known
