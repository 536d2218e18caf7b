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


def open_store() -> Store:
    from envtool.image.store import Store

    return Store.open_default()


# ---- images ------------------------------------------------------------------------------------
def build(file: str | None = None, directory: str | None = None, images: list[str] | None = None,
          reporter: Any = None, env: str | None = None, locked: bool = False,
          notes: list[str] | None = None) -> list[Any]:
    """Build the project's image recipes (all, or the named ones) from envtool.lock; returns
    BuildResults."""
    from envtool.errors import ImageNotFound

    loaded = load_project(file, directory, env)
    recipes = loaded.project.images
    names = images or list(recipes)
    for n in names:
        if n not in recipes:
            from envtool.spec.locate import nearest

            near = nearest(n, recipes)
            raise ImageNotFound(f"no image recipe named {n!r} in {loaded.file}",
                                hint=f'did you mean "{near}"?' if near else None)
    check_host(need_overlay=False)
    results = _locked_build(loaded, names, reporter, locked or _strict_env(env), notes)
    return [results[n] for n in names]


def _strict_env(env: str | None) -> bool:
    """Outside development, a missing or mismatched lock is an error, never updated."""
    return env is not None and env not in ("dev", "development", "local")


def _locked_build(loaded: Any, names: list[str], reporter: Any, strict: bool,
                  notes: list[str] | None) -> dict[str, Any]:
    from envtool.image.resolve import bound_build, lock_path, resolve
    from envtool.lock import io as lock_io

    notes = notes if notes is not None else []
    if not names:
        return {}
    path = lock_path(loaded.directory)
    lock = lock_io.read(path)
    store = open_store()
    first: dict[str, Any] = {}
    if lock is None:
        if strict:
            raise SpecError(f"no {path.name} in {loaded.directory}", hint="run `envtool lock` and commit the file")
        lock = resolve(loaded.project, loaded.directory, store, None, None, reporter, refresh=False, built=first)
        lock_io.write(path, lock)
        notes.append(f"wrote {path} (no lock file yet: locked what was built)")
    results, updated = bound_build(loaded.project, loaded.directory, store, lock, names, reporter, strict)
    for n, r in results.items():            # work done while locking is work done by this build
        if n in first:
            r.cached = r.cached and first[n].cached
    if updated:
        lock_io.write(path, lock)
        notes.append(f"updated {path}: " + "; ".join(updated))
    return results


def lock(file: str | None = None, directory: str | None = None, update: list[str] | None = None,
         reporter: Any = None) -> Any:
    """Resolve every image recipe (or only `update`) again and write envtool.lock."""
    from envtool.image.resolve import lock_path, resolve
    from envtool.lock import io as lock_io

    check_host(need_overlay=False)
    loaded = load_project(file, directory)
    path = lock_path(loaded.directory)
    existing = lock_io.read(path) if update else None
    new = resolve(loaded.project, loaded.directory, open_store(), update or None, existing, reporter)
    lock_io.write(path, new)
    return path, new


def save(image_ref: str, output: str, file: str | None = None, directory: str | None = None,
         compress: bool = True, reporter: Any = None) -> tuple[str, str]:
    """Write an image as an OCI archive; returns (the archive's reference name, manifest digest)."""
    from pathlib import Path

    from envtool.image.save import save as save_archive

    image = resolve_image(image_ref, file, directory, reporter)
    store = open_store()
    names = [n for n, d, _ in store.tags() if d == image.manifest_digest]
    ref = names[0] if names else f"envtool/{image.manifest_digest[7:19]}:latest"
    if "/" not in ref.split(":")[0] or not ref.startswith("localhost/"):
        ref = "localhost/" + ref
    return ref, save_archive(store, image, ref, Path(output), compress)


def push(registry: str, file: str | None = None, directory: str | None = None, images: list[str] | None = None,
         reporter: Any = None, tag: str = "latest", compress: bool = False) -> list[dict[str, Any]]:
    """Push the project's images (built from the lock) to REGISTRY[/prefix]/<project>/<image>:<tag>,
    under their locked digests (unless compress)."""
    from envtool.image.sources.registry import push as registry_push

    results = build(file, directory, images, reporter)
    loaded = load_project(file, directory)
    out = []
    for r in results:
        ref = f"{registry.rstrip('/')}/{loaded.name}/{r.name}:{tag}"
        digest, uploaded = registry_push(open_store(), r.image, ref, compress)
        out.append({"image": r.name, "ref": ref, "digest": digest, "uploaded_blobs": uploaded})
    return out


def pull(ref: str) -> Any:
    from envtool.image.sources.registry import pull as registry_pull

    return registry_pull(ref, open_store())


def list_images(file: str | None = None, directory: str | None = None) -> list[dict[str, Any]]:
    """Stored images; `locked_by` names the entries of this project's envtool.lock that use each."""
    from envtool.lock import io as lock_io
    from envtool.spec.peek import find_file

    store = open_store()
    users: dict[str, list[str]] = {}
    try:
        lock_file = lock_io.path_for(find_file(file, directory).parent)
        name = project_name(file, directory)
        for image, digest in lock_io.image_digests(lock_file).items():
            users.setdefault(digest, []).append(f"{name}/{image}")
    except SpecError:
        pass
    out = []
    for name, digest, _ann in store.tags():
        try:
            img = store.image(digest)
        except EnvtoolError:
            continue
        out.append({"name": name, "digest": digest, "size": img.size, "layers": len(img.layers),
                    "created": img.created, "locked_by": users.get(digest, [])})
    return out


def gc() -> dict[str, int]:
    """Remove what no tagged image and no running stack uses."""
    from envtool.image.store import gc as store_gc
    from envtool.stack import state

    store = open_store()
    keep = set()
    for project in state.projects(store.root):
        for rec in (state.load(state.Paths.for_project(store.root, project)).get("containers") or {}).values():
            keep.add(rec.get("image"))
    return store_gc(store, {k for k in keep if k})


def resolve_image(ref: str, file: str | None = None, directory: str | None = None,
                  reporter: Any = None) -> Any:
    """An image reference for `run`: a recipe of the current project (built if needed), a store
    name ("shop/py:latest"), a manifest digest, or oci-archive:<path>."""
    from envtool.errors import ImageNotFound

    store = open_store()
    found = stored_image(store, ref)
    if found is not None:
        return found
    if ref.startswith("oci-archive:"):
        from envtool.image.sources.oci_archive import import_archive

        path = os.path.abspath(ref[len("oci-archive:"):])
        image = import_archive(path, store)
        store.tag(f"oci-archive/{os.path.basename(path)}:latest", image)     # so gc keeps it
        return image
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


def stored_image(store: Store, ref: str) -> Any:
    """The image a digest or a store name ("shop/py:latest", "shop/py") names, or None."""
    if ref.startswith("sha256:"):
        return store.image(ref)
    if ref.startswith("oci-archive:"):
        return None
    digest = store.resolve(ref if ":" in ref else f"{ref}:latest")
    return store.image(digest) if digest else None


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


# ---- the stack ---------------------------------------------------------------------------------
def _paths(project: str) -> Any:
    from envtool.stack.state import Paths

    return Paths.for_project(open_store().root, project)


def desired_stack(loaded: Any, reporter: Any = None, scale: dict[str, int] | None = None,
                  services: list[str] | None = None, locked: bool = False, notes: list[str] | None = None) -> Any:
    """Build what the services need and return the StackSpec (every replica)."""
    from envtool.errors import ImageNotFound

    project = loaded.project
    for name, n in (scale or {}).items():
        if name not in project.services:
            raise ImageNotFound(f"no service named {name!r}")
        project.services[name].replicas = n
    if services:
        unknown = [s for s in services if s not in project.services]
        if unknown:
            raise SpecError(f"no such service: {', '.join(unknown)}", hint="see `envtool config`")
        keep, todo = set(), list(services)
        while todo:
            s = todo.pop()
            if s not in keep:
                keep.add(s)
                todo.extend(project.services[s].depends_on)
        project.services = {k: v for k, v in project.services.items() if k in keep}
    images = service_images(loaded, reporter, locked, notes)
    return _stack_of(loaded, images)


def _stack_of(loaded: Any, images: dict[str, Any]) -> Any:
    from envtool.stack.convert import stack_spec

    store = open_store()
    return stack_spec(loaded, images, store, {ref: store.unpack(img) for ref, img in images.items()})


def service_images(loaded: Any, reporter: Any = None, locked: bool = False, notes: list[str] | None = None
                   ) -> dict[str, Any]:
    """Every image the project's services use, by reference as written: recipes built from the lock,
    oci-archive files imported, registry references pulled."""
    from envtool.image.sources.oci_archive import import_archive
    from envtool.spec.checks import is_recipe_ref

    project = loaded.project
    store = open_store()
    recipes_used = sorted({s.image for s in project.services.values() if is_recipe_ref(s.image)})
    built = _locked_build(loaded, recipes_used, reporter, locked or _strict_env(loaded.env), notes)
    images: dict[str, Any] = {}
    for svc in project.services.values():
        ref = svc.image
        if ref in images:
            continue
        if is_recipe_ref(ref):
            images[ref] = built[ref].image
        elif ref.startswith("oci-archive:"):
            path = ref[len("oci-archive:"):]
            images[ref] = import_archive(path if os.path.isabs(path) else str(loaded.directory / path), store)
        else:
            from envtool.image.sources.registry import pull as registry_pull

            images[ref] = registry_pull(ref, store)
    return images


def plan(file: str | None = None, directory: str | None = None, env: str | None = None,
         reporter: Any = None) -> list[Any]:
    from envtool.stack import state
    from envtool.stack.plan import plan_up

    loaded = load_project(file, directory, env)
    desired = desired_stack(loaded, reporter)
    recorded = state.load(_paths(loaded.name)).get("containers") or {}
    return plan_up(desired, recorded)


def up(file: str | None = None, directory: str | None = None, env: str | None = None,
       services: list[str] | None = None, reporter: Any = None, on_event: Any = None,
       scale: dict[str, int] | None = None, locked: bool = False, notes: list[str] | None = None
       ) -> dict[str, Any]:
    """Build, then have the project's supervisor reconcile the stack; returns the final rows.
    A whole stack in an environment other than dev is a release: its id is recorded as deployed here."""
    check_host()
    early = _start_supervisor_early(file, directory)
    try:
        loaded = load_project(file, directory, env)
    except BaseException:
        if early:
            _abandon_if_unused(early)
        raise
    whole = not services and not scale and _strict_env(env)

    def desired() -> Any:
        if not whole:
            return desired_stack(loaded, reporter, scale, services, locked, notes)
        images = service_images(loaded, reporter, locked, notes)
        spec = _stack_of(loaded, images)
        rel = _release_for(loaded, images)
        spec.release, spec.lock, spec.images = rel.id, rel.lock_digest, dict(rel.images)
        spec.environments = sorted(rel.stack["environments"])
        return spec

    return _apply(loaded.name, desired, services, on_event, f"project:{loaded.directory}",
                  started_early=early == loaded.name)


def _start_supervisor_early(file: str | None, directory: str | None) -> str | None:
    """Start the project's supervisor before envtool.toml is loaded, so that its imports (pyroute2
    alone is ~200 ms) overlap the CLI's loading and build check; returns the project's name when
    this call started it.  A second supervisor exits at once: the lock decides."""
    from envtool.spec.peek import project_name as peek_name
    from envtool.stack import control, state

    try:
        name = peek_name(file, directory)
    except SpecError:
        return None
    if name is None:
        return None
    paths = _paths(name)
    if control.running(paths) or state.load(paths).get("containers"):
        return None
    control.start(str(open_store().root), name, paths)
    return name


def _abandon_if_unused(project: str) -> None:
    """After a failed load: the supervisor started early goes away again, unless another `up`
    has put containers in its care meanwhile (that one holds the lock until it is done)."""
    import fcntl

    from envtool.stack import state

    paths = _paths(project)
    lock = os.open(paths.cli_lock, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not state.load(paths).get("containers"):
            _abandon(project, paths)
    finally:
        os.close(lock)


def up_bundle(bundle: str, env: str | None = None, reporter: Any = None, on_event: Any = None,
              expect: str | None = None) -> tuple[dict[str, Any], str]:
    """Run a release bundle: every part verified, no project directory and no package mirror needed.
    Returns (final rows, release id)."""
    from envtool.release import bundle as bundle_file
    from envtool.spec.load import LoadedProject
    from envtool.spec.model import Project

    check_host()
    store = open_store()
    rel = bundle_file.read(Path(bundle), store)
    if expect and rel.id != expect:
        from envtool.release.bundle import BundleError

        raise BundleError(f"{bundle} is release {rel.id}, not {expect}", hint="check which file you copied")
    project = Project.model_validate(rel.config_for(env))
    directory = bundle_file.unpack_files(store, rel)
    loaded = LoadedProject(project, Path(bundle), directory, env, [])

    def desired() -> Any:
        images = {ref: store.image(rel.images[ref]) for ref in {s.image for s in project.services.values()}}
        spec = _stack_of(loaded, images)
        spec.release, spec.lock, spec.images = rel.id, rel.lock_digest, dict(rel.images)
        spec.environments = sorted(rel.stack.get("environments", {}))
        return spec

    final = _apply(rel.project, desired, None, on_event, f"bundle:{os.path.abspath(bundle)}")
    return {**final, "project": rel.project}, rel.id


def _apply(project: str, make_desired: Any, services: list[str] | None, on_event: Any, source: str,
           started_early: bool = False) -> dict[str, Any]:
    import fcntl

    from envtool.release import history
    from envtool.stack import control, state
    from envtool.stack.spec import stack_to_json

    paths = _paths(project)
    paths.root.mkdir(parents=True, exist_ok=True)
    lock = os.open(paths.cli_lock, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)               # two `up`s in one project take turns
        fresh = not state.load(paths).get("containers") and (started_early or not control.running(paths))
        control.start(str(open_store().root), project, paths)    # it starts while we build
        try:
            desired = make_desired()
        except BaseException:
            if fresh:                                  # nothing ran: leave nothing behind either
                _abandon(project, paths)
            raise
        if services:                                   # keep the services not named as they are
            recorded = _recorded_specs(paths)
            names = {c.name for c in desired.containers}
            desired.containers += [c for c in recorded if c.name not in names and c.service not in
                                   {d.service for d in desired.containers}]
        control.ensure(str(open_store().root), project, paths)
        final = _stream(paths, {"op": "apply", "stack": stack_to_json(desired)}, on_event)
        if desired.release:
            history.record_deployment(open_store().root, project, desired.release, desired.env, desired.lock,
                                      desired.images, source, history.stack_healthy(final.get("containers", [])),
                                      desired.environments)
    finally:
        os.close(lock)
    return final


# ---- releases ------------------------------------------------------------------------------------
def _frozen(loaded: Any) -> dict[str, Any]:
    from envtool.release.bundle import frozen_config
    from envtool.spec.interpolate import read_dotenv

    data = loaded.project.model_dump(mode="json", by_alias=True, exclude_none=True)
    env_files: dict[str, dict[str, str]] = {}
    for name, svc in loaded.project.services.items():
        for f in svc.env_file:
            env_files.setdefault(name, {}).update(read_dotenv((loaded.directory / f).read_text()))
    return frozen_config(data, env_files)


def _reload(loaded: Any, env: str | None) -> Any:
    """The same project under another environment."""
    return load_project(str(loaded.file.resolve()), str(loaded.directory.resolve()), env)


def _release_for(loaded: Any, images: dict[str, Any], envs: list[str] | None = None) -> Any:
    """The release the project is now: its resolved stack in every (or the named) environment, its
    lock, the digests of its images, and the files its bind mounts read."""
    from envtool.image.resolve import lock_path
    from envtool.release.bundle import Release, files_blob

    base = _reload(loaded, None)
    names = _environment_names(base, envs)
    stack = {"base": _frozen(base),
             "environments": {e: _frozen(_reload(base, e)) for e in names}}
    lock_file = lock_path(base.directory)
    if not lock_file.exists():
        raise SpecError(f"no {lock_file.name} in {base.directory}", hint="run `envtool lock` and commit the file")
    files = files_blob(open_store(), base.directory, [stack["base"], *stack["environments"].values()])
    return Release(base.name, stack, lock_file.read_bytes(),
                   {ref: img.manifest_digest for ref, img in sorted(images.items())}, files)


def bundle(output: str, file: str | None = None, directory: str | None = None, envs: list[str] | None = None,
           reporter: Any = None, compress: bool = True) -> dict[str, Any]:
    """Write a release bundle; returns {"release", "path", "size", "images", "environments"}."""
    from envtool.release import bundle as bundle_file

    check_host(need_overlay=False)
    loaded = load_project(file, directory)
    images = service_images(loaded, reporter, locked=True)
    rel = _release_for(loaded, images, envs)
    out = Path(output)
    rid = bundle_file.write(rel, open_store(), out, compress, reporter)
    return {"release": rid, "path": str(out), "size": out.stat().st_size, "images": rel.images,
            "environments": sorted(rel.stack["environments"]), "lock": rel.lock_digest}


def image_digests(loaded: Any, reporter: Any = None, notes: list[str] | None = None) -> dict[str, str]:
    """Manifest digest of every image the services use, without building: recipes from
    envtool.lock (which must match them), other references from the store or their source."""
    from envtool.errors import ImageNotFound
    from envtool.image.resolve import lock_path
    from envtool.lock import io as lock_io
    from envtool.lock.drift import drift
    from envtool.spec.checks import is_recipe_ref

    refs = sorted({s.image for s in loaded.project.services.values()})
    recipes = [r for r in refs if is_recipe_ref(r)]
    out: dict[str, str] = {}
    if recipes:
        lock_file = lock_io.read(lock_path(loaded.directory))
        if lock_file is not None and not drift(loaded.project.images, lock_file, recipes):
            out.update({r: lock_file.images[r].digest for r in recipes})
        else:                                  # as `build` does: lock (or say why not) first
            check_host(need_overlay=False)
            built = _locked_build(loaded, recipes, reporter, False, notes)
            out.update({r: built[r].image.manifest_digest for r in recipes})
    for r in refs:
        if r in out:
            continue
        if "@sha256:" in r:
            out[r] = r.split("@", 1)[1]
            continue
        try:
            out[r] = service_images(type(loaded)(loaded.project.model_copy(update={"services": {
                k: v for k, v in loaded.project.services.items() if v.image == r}}), loaded.file, loaded.directory,
                loaded.env, []))[r].manifest_digest
        except EnvtoolError as e:
            raise ImageNotFound(f"cannot resolve image {r!r} to a digest: {e.message}", hint=e.hint) from None
    return out


def export_kubernetes(output: str, file: str | None = None, directory: str | None = None,
                      envs: list[str] | None = None, registry: str = "localhost:5000") -> dict[str, Any]:
    """Write a Kustomize base and overlays; returns {"files", "notes"}."""
    from envtool.release import k8s
    from envtool.release.output import write_tree

    base = load_project(file, directory)
    names = _environment_names(base, envs)
    environments = {e: _reload(base, e).project for e in names}
    notes: list[str] = []
    ex = k8s.export(base.project, environments, image_digests(base, None, notes), registry)
    return {"files": write_tree(Path(output), ex.files, ("base", "overlays")), "notes": ex.notes, "info": notes}


def export_compose(output: str | None, file: str | None = None, directory: str | None = None,
                   env: str | None = None, registry: str = "localhost:5000") -> dict[str, Any]:
    """A Compose file of the resolved stack (one environment); returns {"text", "notes"}."""

    from envtool.release.compose_out import compose
    from envtool.release.output import yaml_text

    loaded = load_project(file, directory, env)
    info: list[str] = []
    doc, notes = compose(loaded.project, image_digests(loaded, None, info), registry)
    text = (f"# {loaded.name}: exported by `envtool export compose`" + (f" --env {env}" if env else "") +
            f"; run with -p {loaded.name}\n" + yaml_text([doc]))
    if output:
        from envtool._util.atomic import write_atomic

        write_atomic(output, text)
    return {"text": text, "notes": notes, "info": info}


def import_compose(compose_file: str, output: str | None = None, project: str | None = None,
                   force: bool = False) -> dict[str, Any]:
    """Convert a Compose file into an envtool.toml beside it (or at output); the result is loaded
    back to prove it valid.  Returns {"file", "notes", "services", "images"}."""
    import tomli_w
    import yaml

    from envtool.release.compose_in import convert

    src = Path(compose_file)
    if not src.is_file():
        raise SpecError(f"no such file: {src}", hint="pass the path of a compose.yaml / docker-compose.yml")
    try:
        data = yaml.safe_load(src.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        from envtool.errors import Location

        raise SpecError(f"invalid YAML: {getattr(e, 'problem', None) or e}",
                        location=Location(str(src), mark.line + 1, mark.column + 1) if mark else Location(str(src))
                        ) from None
    if not isinstance(data, dict):
        raise SpecError(f"{src} is not a Compose file (no top-level mapping)")
    result = convert(data, src.parent, project)
    target = Path(output) if output else src.parent / "envtool.toml"
    if target.exists() and not force:
        raise SpecError(f"{target} already exists", hint="pass --force to overwrite it, or -o FILE")
    header = f"# Converted from {src.name} by `envtool import`.\n"
    if result.notes:
        header += "# Not converted, or approximated:\n" + "".join(f"#   - {n}\n" for n in result.notes)
    text = header + tomli_w.dumps(result.document)
    staged = target.with_name(f".{target.name}.import")
    staged.write_text(text)
    try:
        load_project(str(staged.resolve()), str(target.parent.resolve()))      # valid, or nothing written
    except SpecError as e:
        staged.unlink()
        raise SpecError(f"the converted file is not valid: {e.message}", hint=e.hint) from None
    os.replace(staged, target)
    doc = result.document
    return {"file": str(target), "notes": result.notes, "services": list(doc.get("services", {})),
            "images": list(doc.get("images", {}))}


def _environment_names(loaded: Any, envs: list[str] | None) -> list[str]:
    known = list(loaded.project.environments)
    for e in envs or []:
        if e not in known:
            raise SpecError(f"no environment {e!r} in {loaded.file}", hint="environments: " + (", ".join(known) or "none"))
    return list(envs) if envs else known


def _current(project: str) -> Any:
    """What runs now for the project on this host."""
    from envtool.release.history import Current, stack_healthy
    from envtool.stack import control, state

    paths = _paths(project)
    data = state.load(paths)
    running = control.running(paths) and paths.socket.exists()
    rows = list(control.call(paths, {"op": "ps"}).get("containers", [])) if running else []
    return Current(data.get("release"), data.get("env"), running and bool(rows), stack_healthy(rows))


def promote(source: str, target: str, file: str | None = None, directory: str | None = None,
            release: str | None = None) -> dict[str, Any]:
    """Record that the release deployed and healthy in `source` on this host goes to `target`."""
    from envtool.image.resolve import lock_path
    from envtool.release import history

    loaded = load_project(file, directory)
    root = open_store().root
    current = _current(loaded.name)
    if current.running and current.healthy and current.release:
        history.mark_healthy(root, loaded.name, current.release, current.env)
    lock_file = lock_path(loaded.directory)
    lock_now = sha256_file(lock_file) if lock_file.exists() else None
    record = history.decide_promotion(current, history.deployments(root, loaded.name), source, target,
                                      lock_now, list(loaded.project.environments))
    if release and record["release"] != release:
        raise history.PromotionRefused(f"{source!r} runs release {record['release']}, not {release}",
                                       hint="deploy that release to it first")
    entry = {"release": record["release"], "from": source, "to": target, "promoted_at": history.now(),
             "healthy_since": record.get("healthy_at") or history.now(), "deployed_at": record["deployed_at"],
             "lock": record["lock"], "images": record["images"]}
    path = history.append_release(loaded.directory, entry)
    return {**entry, "file": str(path)}


def releases(file: str | None = None, directory: str | None = None, project: str | None = None
             ) -> dict[str, Any]:
    """The project's promotion history (from its committed file) and its deployments on this host."""
    from envtool.release import history

    promotions: list[dict[str, Any]] = []
    name = project
    try:
        loaded = load_project(file, directory)
        promotions = history.read_releases(loaded.directory)
        name = name or loaded.name
    except SpecError:
        if name is None:
            raise
    assert name is not None
    current = _current(name)
    if current.running and current.healthy and current.release:
        history.mark_healthy(open_store().root, name, current.release, current.env)
    deployed = history.deployments(open_store().root, name)
    return {"project": name, "current": {"release": current.release if current.running else None,
                                         "env": current.env, "healthy": current.healthy},
            "promotions": promotions, "deployments": deployed}


def sha256_file(path: Path) -> str:
    from envtool._util.digest import sha256_bytes

    return sha256_bytes(path.read_bytes())


def _abandon(project: str, paths: Any) -> None:
    """A first `up` failed before anything started: its supervisor and state directory go away."""
    import shutil
    import time

    from envtool.stack import control

    try:
        control.wait(project, paths)                   # the one `up` started; never a second one
        for _ in control.request(paths, {"op": "down", "volumes": False}):
            pass
        for _ in range(500):
            if not control.running(paths):
                break
            time.sleep(0.01)
    except EnvtoolError:
        pass
    shutil.rmtree(paths.root, ignore_errors=True)


def _recorded_specs(paths: Any) -> list[Any]:
    from envtool.stack import state
    from envtool.stack.spec import container_from_json

    return [container_from_json(r["spec"]) for r in (state.load(paths).get("containers") or {}).values()]


def _stream(paths: Any, msg: dict[str, Any], on_event: Any) -> dict[str, Any]:
    from envtool.errors import InputError, RuntimeFailure
    from envtool.stack import control

    final: dict[str, Any] = {}
    for event in control.request(paths, msg):
        if event.get("done"):
            final = event
        elif on_event:
            on_event(event)
    if not final.get("ok", False):
        err = final.get("error") or {}
        kind = InputError if err.get("exit_code") == InputError.exit_code else RuntimeFailure
        failure = kind(err.get("message", "the supervisor reported a failure"),
                       hint=err.get("hint") or f"see `envtool logs` and {paths.supervisor_log}")
        failure.code = err.get("code", "runtime-failure")  # type: ignore[misc]
        raise failure
    return final


def project_name(file: str | None = None, directory: str | None = None) -> str:
    """The project's name; falls back to the directory's name when envtool.toml cannot be read,
    so `down` and `ps` still work on a broken file."""
    from envtool._util.names import project_name_from_dir
    from envtool.spec.peek import project_name as peek_name

    if os.environ.get("ENVTOOL_PROJECT"):            # -p NAME: a stack run from a bundle has no directory
        return os.environ["ENVTOOL_PROJECT"]
    try:
        return peek_name(file, directory) or load_project(file, directory).name
    except SpecError:
        base = os.path.abspath(directory or os.getcwd())
        return project_name_from_dir(os.path.basename(base))


def down(file: str | None = None, directory: str | None = None, volumes: bool = False,
         on_event: Any = None) -> bool:
    """Stop and remove the stack; returns False when nothing was running."""
    import fcntl
    import shutil
    import time

    from envtool.stack import control, state

    check_host(need_overlay=False)
    name = project_name(file, directory)
    paths = _paths(name)
    if not paths.root.exists():
        if volumes:
            _remove_volumes(name)
        return False
    lock = os.open(paths.cli_lock, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        did = bool(state.load(paths)) or control.running(paths)
        stop_watch_daemon(paths)
        if did:
            control.ensure(str(open_store().root), name, paths)
            _stream(paths, {"op": "down", "volumes": volumes}, on_event)
            for _ in range(500):                       # the supervisor exits right after answering
                if not control.running(paths):
                    break
                time.sleep(0.01)
        shutil.rmtree(paths.root, ignore_errors=True)
    finally:
        os.close(lock)
    if volumes:
        _remove_volumes(name)
    return did


def _remove_volumes(project: str) -> None:
    import shutil

    vol_root = open_store().root / "volumes"
    if vol_root.is_dir():
        for d in vol_root.glob(f"{project}_*"):
            shutil.rmtree(d, ignore_errors=True)


def ps(file: str | None = None, directory: str | None = None) -> list[dict[str, Any]]:
    from envtool.stack import control, state

    paths = _paths(project_name(file, directory))
    if control.running(paths) and paths.socket.exists():
        return list(control.call(paths, {"op": "ps"}).get("containers", []))
    rows = []
    for name, rec in sorted((state.load(paths).get("containers") or {}).items()):
        live = state.alive(rec.get("pid"), rec.get("start_time"))
        rows.append({"name": name, "service": rec.get("service"), "replica": rec["spec"]["replica"],
                     "status": rec.get("status") if live else "exited", "health": None,
                     "pid": rec.get("pid") if live else None, "ip": rec.get("address"), "ports": [],
                     "uptime": None, "restarts": rec.get("restarts", 0), "exit_code": rec.get("exit_code"),
                     "oom_killed": False, "image": rec.get("image"), "supervisor": "not running"})
    return rows


def control_services(op: str, services: list[str], file: str | None = None, directory: str | None = None
                     ) -> dict[str, Any]:
    from envtool.stack import control

    check_host(need_overlay=False)
    paths = _paths(project_name(file, directory))
    if not control.running(paths):
        from envtool.errors import RuntimeFailure

        raise RuntimeFailure("the stack is not running", hint="run `envtool up` first")
    return _stream(paths, {"op": op, "services": services}, None)


def watch_log(project: str) -> tuple[str, Any]:
    """The watcher's entry in the stack's log stream: (name, path)."""
    name = f"{project}-watch"
    return name, _paths(project).log(name)


def log_files(file: str | None = None, directory: str | None = None, services: list[str] | None = None
              ) -> list[tuple[str, Any]]:
    """(container name, log path) for the project's containers, optionally of some services."""
    from envtool.stack import state

    paths = _paths(project_name(file, directory))
    recorded = state.load(paths).get("containers") or {}
    out = []
    for name, rec in sorted(recorded.items()):
        if services and rec.get("service") not in services:
            continue
        out.append((name, paths.log(name)))
    watch_name, watch_path = watch_log(paths.root.name)
    if watch_path.exists() and (not services or "watch" in services):
        out.append((watch_name, watch_path))
    if services and not out:
        raise SpecError(f"no running containers for {', '.join(services)}")
    return out


def exec_spec(service: str, argv: list[str], file: str | None = None, directory: str | None = None,
              replica: int = 1, env: list[str] | None = None, user: str | None = None,
              workdir: str | None = None) -> Any:
    """EnterSpec for running argv in a service's container (same user, env, cwd, caps)."""
    from envtool.runtime.cgroups import detect
    from envtool.runtime.enter import EnterSpec
    from envtool.runtime.seccomp import bpf_for
    from envtool.stack import state
    from envtool.stack.convert import parse_env
    from envtool.stack.spec import container_from_json

    name = project_name(file, directory)
    recorded = state.load(_paths(name)).get("containers") or {}
    matches = [r for r in recorded.values() if r.get("service") == service]
    if not matches:
        from envtool.errors import RuntimeFailure

        raise RuntimeFailure(f"service {service!r} has no container", hint="run `envtool up` first")
    rec = next((r for r in matches if r["spec"]["replica"] == replica), matches[0])
    if not state.alive(rec.get("pid"), rec.get("start_time")):
        from envtool.errors import RuntimeFailure

        raise RuntimeFailure(f"container {rec['spec']['name']} is not running", hint="see `envtool ps`")
    spec = container_from_json(rec["spec"])
    env_map = dict(spec.env)
    env_map.update(parse_env(env or []))
    cg = detect().open(f"{state.cgroup_parent(open_store().root, name)}/{spec.name}")
    return EnterSpec(rec["pid"], tuple(argv), tuple(env_map.items()), workdir or spec.workdir,
                     spec.user if user is None else user, frozenset(spec.capabilities),
                     tuple(cg.procs_files()), bpf_for(spec.capabilities, str(open_store().cache_dir / "seccomp")))


# ---- the development loop ------------------------------------------------------------------------
class StackHooks:
    """What the watcher may do to a running stack (devloop.watch.Hooks)."""

    def __init__(self, file: str | None, directory: str | None, env: str | None, echo: bool) -> None:
        self.file, self.directory, self.env, self.echo = file, directory, env, echo
        self.name = project_name(file, directory)
        self.paths = _paths(self.name)

    def _running(self, service: str) -> list[dict[str, Any]]:
        from envtool.stack import state

        recs = (state.load(self.paths).get("containers") or {}).values()
        return [r for r in recs if r.get("service") == service and state.alive(r.get("pid"), r.get("start_time"))]

    def replicas(self, service: str) -> list[tuple[int, str]]:
        return [(r["pid"], r["spec"]["user"]) for r in self._running(service)]

    def restart(self, service: str) -> None:
        control_services("restart", [service], self.file, self.directory)

    def rebuild(self, service: str) -> None:
        """Re-resolve the service's recipe when it changed (updating its envtool.lock entry),
        then rebuild and recreate the service."""
        from envtool.image.resolve import lock_path
        from envtool.lock import io as lock_io
        from envtool.lock.drift import drift

        loaded = load_project(self.file, self.directory, self.env)
        image = loaded.project.services[service].image
        current = lock_io.read(lock_path(loaded.directory))
        if image in loaded.project.images and current is not None and drift(loaded.project.images, current, [image]):
            lock(self.file, self.directory, update=[image])
            self.log(f"{service}: recipe {image!r} changed; envtool.lock entry updated")
        up(self.file, self.directory, self.env, services=[service])

    def exec(self, service: str, argv: tuple[str, ...]) -> int:
        from envtool.runtime import enter, ipc

        code = 0
        for r in self._running(service):
            spec = exec_spec(service, list(argv), self.file, self.directory, r["spec"]["replica"])
            devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            try:
                pid, report = enter.spawn(spec, stdio=(devnull, devnull, devnull))
            finally:
                os.close(devnull)
            failure = ipc.receive(report)
            os.close(report)
            _, status = os.waitpid(pid, 0)
            if failure is not None:
                raise failure.to_error(r["spec"]["name"])
            code = code or os.waitstatus_to_exitcode(status)
        return code

    def log(self, text: str) -> None:
        import sys
        import time

        line = f"[watch] {text}"
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        with open(watch_log(self.name)[1], "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        if self.echo:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()


def watcher(file: str | None = None, directory: str | None = None, env: str | None = None,
            echo: bool = True) -> Any:
    """A Watcher for the project's develop.watch rules, acting on its running stack."""
    from envtool.devloop.watch import Watcher, rules_for

    loaded = load_project(file, directory, env)
    rules = rules_for(loaded.project, str(loaded.directory))
    if not rules:
        raise SpecError("no service has develop.watch rules",
                        hint='add [services.NAME.develop] watch = [{ path = "...", action = "sync+restart", '
                             'target = "/app" }]', location=None)
    return Watcher(rules, str(loaded.directory), StackHooks(file, directory, env, echo))


def start_watch_daemon(file: str | None = None, directory: str | None = None, env: str | None = None) -> None:
    """`up -d --watch`: a detached watcher for the project (stopped by `down`)."""
    import signal

    from envtool.stack.control import detach
    from envtool.stack.state import proc_start_time

    w = watcher(file, directory, env, echo=False)
    paths = _paths(w.hooks.name)
    stop_watch_daemon(paths)

    def body() -> None:
        def ready() -> None:                     # the first wake-up comes once watches are set
            pid_file = paths.root / "watch.pid"
            if not pid_file.exists():
                pid_file.write_text(f"{os.getpid()} {proc_start_time(os.getpid())}")

        stop: list[int] = []
        signal.signal(signal.SIGTERM, lambda n, f: stop.append(n))
        try:
            w.initial_sync()
            w.run(poll=ready, should_stop=lambda: bool(stop))
        except BaseException as e:  # noqa: BLE001 - a detached watcher reports in the stack's log
            w.hooks.log(f"stopped: {e}")

    detach(body)
    import time

    deadline = time.monotonic() + 10
    while not (paths.root / "watch.pid").exists():        # return once it is watching
        if time.monotonic() > deadline:
            raise SpecError("the watcher did not start", hint="see `envtool logs watch`")
        time.sleep(0.01)


def stop_watch_daemon(paths: Any) -> None:
    import signal
    import time

    from envtool.stack.state import alive

    f = paths.root / "watch.pid"
    try:
        pid, start = (int(x) for x in f.read_text().split())
    except (OSError, ValueError):
        return
    if alive(pid, start):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not alive(pid, start):
                break
            time.sleep(0.01)
    f.unlink(missing_ok=True)
