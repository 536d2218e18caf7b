"""The library facade: what the CLI calls, and what tests and other programs may call.

Every function takes plain arguments and returns plain data; nothing here prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envtool.errors import EnvtoolError, SpecError

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


def open_store() -> Store:
    from envtool.image.store import Store

    return Store.open_default()


# ---- images ------------------------------------------------------------------------------------
def build(file: str | None = None, directory: str | None = None, images: list[str] | None = None,
          reporter: Any = None) -> list[Any]:
    """Build the project's image recipes (all, or the named ones); returns BuildResults."""
    from envtool.errors import ImageNotFound
    from envtool.image.build import Builder

    loaded = load_project(file, directory)
    recipes = loaded.project.images
    names = images or list(recipes)
    for n in names:
        if n not in recipes:
            from envtool.spec.locate import nearest

            near = nearest(n, recipes)
            raise ImageNotFound(f"no image recipe named {n!r} in {loaded.file}",
                                hint=f'did you mean "{near}"?' if near else None)
    check_host(need_overlay=False)
    builder = Builder(open_store(), loaded.name, loaded.directory, recipes, reporter)
    return [builder.build(n) for n in names]


def list_images() -> list[dict[str, Any]]:
    store = open_store()
    out = []
    for name, digest, ann in store.tags():
        try:
            img = store.image(digest)
        except EnvtoolError:
            continue
        out.append({"name": name, "digest": digest, "size": img.size, "layers": len(img.layers),
                    "created": img.created, "recipe_key": ann.get("dev.envtool.recipe-key")})
    return out


def resolve_image(ref: str, file: str | None = None, directory: str | None = None,
                  reporter: Any = None) -> Any:
    """An image reference for `run`: a recipe of the current project (built if needed), a store
    name ("shop/py:latest"), a manifest digest, or oci-archive:<path>."""
    from envtool.errors import ImageNotFound

    store = open_store()
    if ref.startswith("sha256:"):
        return store.image(ref)
    if ref.startswith("oci-archive:"):
        from envtool.image.sources.oci_archive import import_archive

        return import_archive(os.path.abspath(ref[len("oci-archive:"):]), store)
    name = ref if ":" in ref else f"{ref}:latest"
    digest = store.resolve(name)
    if digest:
        return store.image(digest)
    try:
        loaded = load_project(file, directory)
    except SpecError:
        loaded = None
    if loaded is not None and ref in loaded.project.images:
        from envtool.image.build import Builder

        check_host(need_overlay=False)
        return Builder(store, loaded.name, loaded.directory, loaded.project.images, reporter).build(ref).image
    known = [t[0] for t in store.tags()]
    if loaded is not None:
        known += list(loaded.project.images)
    from envtool.spec.locate import nearest

    near = nearest(ref, known)
    raise ImageNotFound(f"no image {ref!r}: not a recipe of this project and not in the store",
                        hint=f'did you mean "{near}"?' if near else "run `envtool images` to list images")


# ---- containers --------------------------------------------------------------------------------
def check_host(need_overlay: bool = True) -> None:
    from envtool.errors import HostError

    if os.geteuid() != 0:
        raise HostError("envtool needs root to create namespaces, mounts and cgroups",
                        hint="run it as root (sudo envtool ...)")
    if need_overlay:
        try:
            with open("/proc/filesystems") as f:
                has_overlay = "overlay" in f.read()
        except OSError:
            has_overlay = False
        if not has_overlay:
            import subprocess

            subprocess.run(["modprobe", "overlay"], capture_output=True, check=False)
            with open("/proc/filesystems") as f:
                if "overlay" not in f.read():
                    raise HostError("overlayfs is not available in this kernel",
                                    hint="load it with `modprobe overlay` (package kmod)")


def run(image_ref: str, opts: Any, file: str | None = None, directory: str | None = None,
        rm: bool = True, reporter: Any = None, name: str | None = None) -> Any:
    """Run a one-off container attached to the terminal; returns (ExitInfo, message or None)."""
    import secrets

    from envtool.runtime import launcher
    from envtool.stack.convert import run_config

    check_host()
    image = resolve_image(image_ref, file, directory, reporter)
    store = open_store()
    dirs = store.unpack(image)
    cname = name or f"run-{secrets.token_hex(6)}"
    init_path = launcher.find_init() if opts.init else None
    cfg = run_config(cname, image, dirs, opts, store, init_path)
    c = launcher.start(cfg, seccomp_cache=str(store.cache_dir / "seccomp"))
    try:
        info = launcher.run_attached(c)
    finally:
        if c.exit is None:
            launcher.stop(c, grace=0)
        launcher.cleanup(c, remove_state=rm)
    return info, launcher.describe_exit(info, cname, cfg.limits.memory)
