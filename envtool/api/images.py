"""Images: lock, build, save, push, pull, list and collect them; find the one a command names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envtool.api.project import load_project, open_store, project_name, strict_env
from envtool.errors import EnvtoolError, SpecError
from envtool.runtime.host import check_host

if TYPE_CHECKING:
    from envtool.image.store import Store


def build(file: str | None = None, directory: str | None = None, images: list[str] | None = None,
          reporter: Any = None, env: str | None = None, locked: bool = False,
          notes: list[str] | None = None) -> list[Any]:
    """Build the project's image recipes (all, or the named ones) from envtool.lock; returns
    BuildResults."""
    from envtool.errors import ImageNotFound

    recorder = _recorder(open_store(), file, directory) if env is None else None
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
    if recorder is not None:
        recorder.sign(recipes, names)
    results = locked_build(loaded, names, reporter, locked or strict_env(env), notes)
    if recorder is not None:                 # what `run NAME` takes without building (image/recent.py)
        recorder.record({n: results[n].image.manifest_digest for n in names})
    return [results[n] for n in names]


def locked_build(loaded: Any, names: list[str], reporter: Any, strict: bool,
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
    if lock is None and strict:
        raise SpecError(f"no {path.name} in {loaded.directory}", hint="run `envtool lock` and commit the file")
    missing = [n for n in names if lock is None or n not in lock.images]
    if missing and not strict:         # only what was asked for (and what it builds on) is built now
        existed = lock is not None
        lock = resolve(loaded.project, loaded.directory, store, missing, lock, reporter, refresh=False, built=first)
        lock_io.write(path, lock)
        notes.append(f"updated {path}: locked {', '.join(missing)}" if existed else
                     f"wrote {path} (no lock file yet: locked what was built)")
    assert lock is not None
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


KEEP_RELEASES = 5


def gc() -> dict[str, int]:
    """Remove what no tagged image, no running stack and no release a rollback could return to
    uses (the last KEEP_RELEASES deployed of each project)."""
    from envtool.image.store import gc as store_gc
    from envtool.release import history
    from envtool.release.bundle import kept_document
    from envtool.stack import state

    store = open_store()
    keep, blobs = set(), set()
    for project in state.projects(store.root):
        data = state.load(state.Paths.for_project(store.root, project))
        for rec in [*state.records(data).values(), *state.retiring(data).values()]:
            keep.add(rec.image)
    for project in history.deployed_projects(store.root):
        for rid in history.recent_releases(history.deployments(store.root, project), KEEP_RELEASES):
            rel = kept_document(store, rid)
            if rel is None:
                continue
            keep.update((rel.get("images") or {}).values())
            blobs.add(rel.get("files") or "")
    return store_gc(store, {k for k in keep if k}, {b for b in blobs if b})


def resolve_image(ref: str, file: str | None = None, directory: str | None = None,
                  reporter: Any = None, notes: list[str] | None = None) -> Any:
    """An image reference for `run`: a recipe of the current project (built from envtool.lock if
    needed, as `build NAME` builds it), a store name ("shop/py:latest"), a manifest digest, or
    oci-archive:<path>."""
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
    recorder = _recorder(store, file, directory)
    try:
        loaded = load_project(file, directory)
    except SpecError:
        loaded = None
    if loaded is not None and ref in loaded.project.images:
        check_host(need_overlay=False)
        if recorder is not None:
            recorder.sign(loaded.project.images, [ref])
        image = locked_build(loaded, [ref], reporter, False, notes)[ref].image
        if recorder is not None:
            recorder.record({ref: image.manifest_digest})
        return image
    known = [t[0] for t in store.tags()]
    if loaded is not None:
        known += list(loaded.project.images)
    from envtool.spec.locate import nearest

    near = nearest(ref, known)
    raise ImageNotFound(f"no image {ref!r}: not a recipe of this project and not in the store",
                        hint=f'did you mean "{near}"?' if near else "run `envtool images` to list images")


def recipe_images(loaded: Any, names: list[str], reporter: Any, strict: bool, notes: list[str] | None,
                  recorder: Any = None) -> dict[str, Any]:
    """The images of the project's recipes `names`: as last built, when a recorder made before the
    project was loaded finds nothing they were built from changed (image/recent.py: `up` of an
    unchanged project reads neither the lock's model nor any step of the build); else built from
    envtool.lock (locked_build) and recorded."""
    store = open_store()
    if recorder is not None and names:
        digests = recorder.lookup(names)
        if digests is not None:
            images = {n: complete_image(store, d) for n, d in digests.items()}
            if all(i is not None for i in images.values()):
                return images
        recorder.sign(loaded.project.images, names)
    built = locked_build(loaded, names, reporter, strict, notes)
    out = {n: built[n].image for n in names}
    if recorder is not None and names:
        recorder.record({n: i.manifest_digest for n, i in out.items()})
    return out


def complete_image(store: Store, digest: str) -> Any:
    """The stored image, or None when it or one of its layers was collected since."""
    try:
        image = store.image(digest)
    except EnvtoolError:
        return None
    return image if all(store.has_blob(layer.digest) for layer in image.layers) else None


def recorder_for(file: str | None, directory: str | None) -> Any:
    """A recorder (image/recent.py) of the project file the load is about to read; None without one."""
    return _recorder(open_store(), file, directory)


def _recorder(store: Store, file: str | None, directory: str | None) -> Any:
    from envtool.image.recent import Recorder
    from envtool.spec.peek import find_file

    try:
        return Recorder(store.cache_dir, find_file(file, directory))
    except SpecError:
        return None


def recent_image(store: Store, ref: str, file: str | None = None, directory: str | None = None) -> Any:
    """The image recipe `ref` of the project was last built to, when nothing it was built from
    has changed since (image/recent.py): `run NAME` without loading the project; else None."""
    from envtool.image.recent import lookup
    from envtool.spec.peek import find_file

    if ref.startswith(("sha256:", "oci-archive:")):
        return None
    try:
        digest = lookup(store.cache_dir, find_file(file, directory), ref)
        return complete_image(store, digest) if digest else None      # collected since: None, built again
    except EnvtoolError:
        return None


def stored_image(store: Store, ref: str) -> Any:
    """The image a digest or a store name ("shop/py:latest", "shop/py") names, or None."""
    if ref.startswith("sha256:"):
        return store.image(ref)
    if ref.startswith("oci-archive:"):
        return None
    digest = store.resolve(ref if ":" in ref else f"{ref}:latest")
    return store.image(digest) if digest else None

