"""The `envtool lock` engine and the binding build: recipes → built images → Lock entries, and
builds pinned to a Lock whose results are checked against it (apko's resolve → build → lock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envtool.errors import BuildError, SpecError
from envtool.image.build import Builder, BuildResult, build_jobs
from envtool.image.recipe import Copy, plan_recipe
from envtool.image.store import Store
from envtool.lock import io as lock_io
from envtool.lock.drift import drift, recipe_digest, spec_digest
from envtool.lock.model import Lock, LockedCopy, LockedImage, LockedPackage


class LockMismatch(BuildError):
    code = "lock-mismatch"


def lock_entry(name: str, recipe: Any, result: BuildResult) -> LockedImage:
    plan = plan_recipe(name, recipe)
    image = result.image
    first_step_layer = len(image.layers) - len(plan.steps)
    copies = [LockedCopy(src=s.src, dst=s.dst, digest=image.layers[first_step_layer + i].digest)
              for i, s in enumerate(plan.steps) if isinstance(s, Copy)]
    pip = [LockedPackage(name=d["name"], version=d["version"], sha256=d["sha256"]) for d in result.pip]
    return LockedImage(digest=image.manifest_digest, config=image.config_digest,
                       layers=[layer.digest for layer in image.layers], source=recipe.from_, base=result.base,
                       recipe=recipe_digest(recipe),
                       packages=[LockedPackage(**p) for p in result.packages], pip=pip, copy_=copies)


def resolve(project: Any, directory: Path, store: Store, names: list[str] | None, existing: Lock | None,
            reporter: Any = None, refresh: bool = True, built: dict[str, BuildResult] | None = None) -> Lock:
    """Build (re-resolving Debian packages when `refresh`) and return the updated Lock; the build
    results go into `built` when given."""
    recipes = project.images
    targets = names or list(recipes)
    for n in targets:
        if n not in recipes:
            raise SpecError(f"no image recipe named {n!r}")
    keep = {k: v for k, v in (existing.images if existing else {}).items() if k in recipes and k not in targets}
    pins = {k: v.pins() for k, v in keep.items()}
    builder = Builder(store, project.name, directory, recipes, reporter, pins=pins,
                      refresh=frozenset(targets) if refresh else frozenset(), pip_pins=_pip_pins(keep),
                      base_pins={k: v.base for k, v in keep.items() if v.base})
    lock = Lock(spec=spec_digest(recipes), images=dict(keep))
    results = builder.build_all(targets, build_jobs())
    for n in targets:
        result = results[n]
        if built is not None:
            built[n] = result
        lock.images[n] = lock_entry(n, recipes[n], result)
    return lock


def _pip_pins(images: dict[str, LockedImage]) -> dict[str, list[dict[str, str]]]:
    return {k: [{"name": p.name, "version": p.version, "sha256": p.sha256} for p in v.pip]
            for k, v in images.items() if v.pip}


def check(project: Any, lock: Lock, names: list[str]) -> None:
    """A recipe edited since the lock is refused: no silent re-resolve."""
    problems = drift(project.images, lock, names)
    if problems:
        first = problems[0]
        raise SpecError(f"image {first.image!r}: {first.reason}",
                        hint=f"run `envtool lock` (or `envtool lock --update {first.image}`)")


def first_difference(name: str, recipe: Any, locked: LockedImage, result: BuildResult) -> str:
    got = [layer.digest for layer in result.image.layers]
    plan = plan_recipe(name, recipe)
    base_layers = len(got) - len(plan.steps)
    for i, (want, have) in enumerate(zip(locked.layers, got, strict=False)):
        if want != have:
            if i < base_layers:
                return f"the {plan.base.describe()} base layer differs ({have[7:19]} instead of {want[7:19]})"
            return f"`{plan.steps[i - base_layers].describe()}` gave a different layer ({have[7:19]} instead of {want[7:19]})"
    if len(got) != len(locked.layers):
        return f"{len(got)} layers instead of {len(locked.layers)}"
    return "the image configuration differs"


def bound_build(project: Any, directory: Path, store: Store, lock: Lock, names: list[str], reporter: Any,
                strict: bool) -> tuple[dict[str, BuildResult], list[str]]:
    """Build from the lock (Debian packages pinned); a result that differs from the lock is an
    error when `strict`, else (development) the lock entry is updated and named in the return."""
    check(project, lock, names)
    builder = Builder(store, project.name, directory, project.images, reporter,
                      pins={k: v.pins() for k, v in lock.images.items()}, pip_pins=_pip_pins(lock.images),
                      base_pins={k: v.base for k, v in lock.images.items() if v.base})
    results, updated = {}, []
    built = builder.build_all(names, build_jobs())
    for n in names:
        result = built[n]
        locked = lock.images[n]
        if result.image.manifest_digest != locked.digest:
            why = first_difference(n, project.images[n], locked, result)
            if strict:
                raise LockMismatch(f"image {n!r} does not match envtool.lock: {why}",
                                   hint="a run step may not be deterministic, or the project's files changed; "
                                        "run `envtool lock --update " + n + "` to accept the new result")
            lock.images[n] = lock_entry(n, project.images[n], result)
            updated.append(f"{n} ({why})")
        results[n] = result
    return results, updated


def lock_path(directory: Path) -> Path:
    return lock_io.path_for(directory)
