"""The stack: plan it, have the project's supervisor apply it, and talk to it (ps, logs, exec, down)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from envtool._util.record import dataclass
from envtool.api.images import recipe_images, recorder_for
from envtool.api.project import load_project, open_store, project_name, project_paths, strict_env
from envtool.errors import EnvtoolError, SpecError
from envtool.runtime.host import check_host


def desired_stack(loaded: Any, reporter: Any = None, scale: dict[str, int] | None = None,
                  services: list[str] | None = None, locked: bool = False, notes: list[str] | None = None,
                  recorder: Any = None, on_spec: Any = None) -> Any:
    """Build what the services need and return the StackSpec (every replica)."""
    from envtool.errors import UsageError
    from envtool.spec.locate import nearest

    project = loaded.project
    for name, n in (scale or {}).items():
        if name not in project.services:
            near = nearest(name, project.services)
            raise UsageError(f"cannot scale {name!r}: no such service in {loaded.file}",
                             hint=f'did you mean "{near}"?' if near else "envtool config lists the services")
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
    images = service_images(loaded, reporter, locked, notes, recorder)
    return _stack_of(loaded, images, on_spec)


def _stack_of(loaded: Any, images: dict[str, Any], on_spec: Any = None) -> Any:
    """The StackSpec, with its bind sources and volumes created and its layers unpacked; `on_spec`
    is given it before its secrets are read (what the next `up` may take again: _keep_stack)."""
    from envtool.stack.convert import make_sources, resolve_secrets, stack_spec

    store = open_store()
    spec = stack_spec(loaded, images, store, {ref: store.unpack(img) for ref, img in images.items()})
    if on_spec is not None:
        on_spec(spec, images)
    resolve_secrets(spec, store)
    make_sources(spec, store)
    return spec


def service_images(loaded: Any, reporter: Any = None, locked: bool = False, notes: list[str] | None = None,
                   recorder: Any = None) -> dict[str, Any]:
    """Every image the project's services use, by reference as written: recipes built from the lock
    (or as last built: api/images.recipe_images, with a recorder made before the load), oci-archive
    files imported, registry references pulled."""
    from envtool.image.sources.oci_archive import import_archive
    from envtool.spec.checks import is_recipe_ref

    project = loaded.project
    store = open_store()
    recipes_used = sorted({s.image for s in project.services.values() if is_recipe_ref(s.image)})
    built = recipe_images(loaded, recipes_used, reporter, locked or strict_env(loaded.env), notes, recorder)
    images: dict[str, Any] = {}
    for name, svc in project.services.items():
        ref = svc.image
        if ref in images:
            continue
        if is_recipe_ref(ref):
            images[ref] = built[ref]
        elif ref.startswith("oci-archive:"):
            path = ref[len("oci-archive:"):]
            images[ref] = import_archive(path if os.path.isabs(path) else str(loaded.directory / path), store)
        else:
            from envtool.image.sources.registry import pull as registry_pull

            try:
                images[ref] = registry_pull(ref, store)
            except EnvtoolError as e:        # which service wanted it, and the way out
                e.message = f"service {name!r}: image {ref!r}: {e.message}"
                e.args = (e.message,)
                raise
    return images


@dataclass
class DryRun:
    """What `up` would do: the actions on containers, and what it would make first."""
    actions: list[Any]
    would: list[str]


def plan(file: str | None = None, directory: str | None = None, env: str | None = None,
         reporter: Any = None) -> DryRun:
    """`up --dry-run`: changes nothing — builds, imports and pulls no image, writes no lock, unpacks
    no layer, creates no folder or volume; says what `up` would do instead."""
    from envtool.stack import state
    from envtool.stack.convert import missing_sources, stack_spec
    from envtool.stack.plan import Action, plan_up

    loaded = load_project(file, directory, env)
    store = open_store()
    images, would = _images_at_hand(loaded, store)
    layers = {ref: [str(store.layer_dir(layer) / "rootfs") for layer in img.layers] for ref, img in images.items()}
    unknown = {s for s, svc in loaded.project.services.items() if svc.image not in images}
    placeholder = {ref: _placeholder_image() for ref in {loaded.project.services[s].image for s in unknown}}
    desired = stack_spec(loaded, {**images, **placeholder}, store, {**layers, **{r: [] for r in placeholder}})
    would += [f"would create {kind} {what}" for kind, what in missing_sources(desired, store)]
    recorded = state.load(project_paths(loaded.name)).get("containers") or {}
    actions = []
    for a in plan_up(desired, recorded):
        if a.service in unknown and a.kind != "remove":
            ref = loaded.project.services[a.service].image
            a = Action("recreate" if a.container in recorded else "create", a.container, a.service,
                       f"its image {ref} is made first")
        actions.append(a)
    return DryRun(actions, would)


def _images_at_hand(loaded: Any, store: Any) -> tuple[dict[str, Any], list[str]]:
    """The services' images that the store already holds as `up` would use them, and for the others
    what `up` would do to get them."""
    from envtool.image.resolve import lock_path
    from envtool.lock import io as lock_io
    from envtool.lock.drift import drift
    from envtool.spec.checks import is_recipe_ref
    from envtool.spec.imageref import ImageRef

    project = loaded.project
    path = lock_path(loaded.directory)
    lock = lock_io.read(path)
    images: dict[str, Any] = {}
    would: list[str] = []
    if lock is None and any(is_recipe_ref(s.image) for s in project.services.values()):
        would.append(f"would write {path.name} (there is none yet)")
    for ref in sorted({s.image for s in project.services.values()}):
        if is_recipe_ref(ref):
            stale = drift(project.images, lock, [ref]) if lock is not None else []
            locked = lock.images.get(ref) if lock is not None else None
            found = _stored(store, locked.digest) if locked is not None and not stale else None
            if found is not None:
                images[ref] = found
            else:
                why = stale[0].reason if stale else "not in envtool.lock" if lock is not None and locked is None \
                    else "no envtool.lock" if lock is None else "not built in this store yet"
                would.append(f"would build image {ref} ({why})")
        elif ref.startswith("oci-archive:"):
            would.append(f"would import {ref}")
        else:
            digest = store.resolve(ref) or ImageRef.parse(ref).digest
            found = _stored(store, digest) if digest else None
            if found is not None:
                images[ref] = found
            else:
                would.append(f"would pull {ref}")
    return images, would


def _stored(store: Any, digest: str) -> Any:
    """The image if the store holds its manifest, config and every layer, else None."""
    try:
        image = store.image(digest)
    except Exception:  # noqa: BLE001 - missing or unreadable: not at hand
        return None
    return image if all(store.has_blob(layer.digest) for layer in image.layers) else None


def _placeholder_image() -> Any:
    from envtool.image.oci import ImageConfig
    from envtool.image.store import Image

    return Image("sha256:" + "0" * 64, "sha256:" + "0" * 64, ImageConfig(), ())

def up(file: str | None = None, directory: str | None = None, env: str | None = None,
       services: list[str] | None = None, reporter: Any = None, on_event: Any = None,
       scale: dict[str, int] | None = None, locked: bool = False, notes: list[str] | None = None,
       warnings: list[str] | None = None) -> dict[str, Any]:
    """Build, then have the project's supervisor reconcile the stack; returns the final rows.
    A whole stack in an environment other than dev is a release: its id is recorded as deployed here."""
    check_host()
    early = _early.pop((file, directory), None) or _start_supervisor_early(file, directory)
    recorder = recorder_for(file, directory)          # before the load: the bytes it reads
    plain = recorder is not None and not services and not scale and not strict_env(env) and os.geteuid() == 0
    kept = _kept_stack(recorder, env) if plain else None
    if kept is not None:                              # nothing it was made from changed: no load
        if warnings is not None:
            warnings.extend(kept["warnings"])
        return _apply(kept["stack"]["project"], lambda: _desired_kept(kept["stack"]), None, on_event,
                      f"project:{kept['stack']['directory']}", started_early=early == kept["stack"]["project"])
    try:
        loaded = load_project(file, directory, env)
    except BaseException:
        if early:
            _abandon_if_unused(early)
        raise
    if warnings is not None:
        warnings.extend(loaded.warnings)
    try:
        rootless_checks(loaded, warnings)
    except BaseException:
        if early:
            _abandon_if_unused(early)
        raise
    whole = not services and not scale and strict_env(env)

    def desired() -> Any:
        if not whole:
            return desired_stack(loaded, reporter, scale, services, locked, notes, recorder,
                                 (lambda spec, images: _keep_stack(recorder, loaded, env, spec, images)) if plain
                                 else None)
        images = service_images(loaded, reporter, locked, notes, recorder)
        spec = _stack_of(loaded, images)
        from envtool.release.assemble import release_for

        return _as_release(spec, release_for(loaded, images, open_store()))

    return _apply(loaded.name, desired, services, on_event, f"project:{loaded.directory}",
                  started_early=early == loaded.name)


def _kept_stack(recorder: Any, env: str | None) -> dict[str, Any] | None:
    """The stack the last full `up` resolved, when nothing it was made from changed (stack/recent.py)."""
    from envtool.api.images import complete_image
    from envtool.stack import recent

    store = open_store()
    fingerprint = recorder.current()
    names = recent.recipe_names(store.cache_dir, recorder.file)
    if fingerprint is None or names is None:
        return None
    digests = recorder.lookup(names)
    if digests is None or any(complete_image(store, d) is None for d in digests.values()):
        return None
    return recent.lookup(store.cache_dir, recorder.file, fingerprint, env, digests)


def _desired_kept(stack: dict[str, Any]) -> Any:
    from envtool.stack.convert import make_sources, resolve_secrets
    from envtool.stack.spec import stack_from_json

    store = open_store()
    spec = stack_from_json(stack)
    for digest in sorted({c.image for c in spec.containers}):
        store.unpack(store.image(digest))              # its layers, should they have been collected
    resolve_secrets(spec, store)
    make_sources(spec, store)
    return spec


def _keep_stack(recorder: Any, loaded: Any, env: str | None, spec: Any, images: dict[str, Any]) -> None:
    """After a full load: what the next plain `up` may take again, when every service runs a recipe
    (a registry tag may move) and nothing changed while it was made."""
    from envtool.spec.checks import is_recipe_ref
    from envtool.stack import recent
    from envtool.stack.spec import stack_to_json

    refs = {s.image for s in loaded.project.services.values()}
    fingerprint = recorder.current()
    if fingerprint is None or not refs or not all(is_recipe_ref(r) for r in refs):
        return
    recent.record(open_store().cache_dir, recorder.file, fingerprint, env,
                  {r: images[r].manifest_digest for r in sorted(refs)}, stack_to_json(spec), list(loaded.warnings),
                  recent.facts(loaded.project, loaded.directory))


def _as_release(spec: Any, rel: Any) -> Any:
    """The stack spec marked as the release it runs (recorded as a deployment once it is up), and
    the release kept in the store: a later `rollback` returns to it."""
    from envtool.release.bundle import keep

    keep(open_store(), rel)
    spec.release, spec.lock, spec.images = rel.id, rel.lock_digest, dict(rel.images)
    spec.environments = sorted(rel.stack.get("environments", {}))
    return spec


@contextmanager
def _taking_turns(paths: Any) -> Iterator[None]:
    """The project's CLI lock: two `up`s (or an `up` and a `down`) in one project take turns."""
    import fcntl

    lock = os.open(paths.cli_lock, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


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
    paths = project_paths(name)
    if control.running(paths) or state.load(paths).get("containers"):
        return None
    control.start(str(open_store().root), name, paths)
    return name


_early: dict[tuple[str | None, str | None], str] = {}     # (file, directory) → the project started


def start_supervisor_early(file: str | None = None, directory: str | None = None) -> None:
    """For the CLI's `up`, before it imports its command-line parser and the model (~150 ms that
    the supervisor's own start-up then overlaps on a second core).  Anything in the way (no file,
    no permission) is left for `up` itself to report."""
    try:
        name = _start_supervisor_early(file, directory)
    except (EnvtoolError, OSError):
        return
    if name:
        _early[(file, directory)] = name


def abandon_early_supervisor() -> None:
    """A supervisor start_supervisor_early started that no `up` took over (the command line was
    wrong) goes away again, with the state directory it made."""
    while _early:
        _abandon_if_unused(_early.popitem()[1])


def _abandon_if_unused(project: str) -> None:
    """After a failed load: the supervisor started early goes away again, unless another `up`
    has put containers in its care meanwhile (that one holds the lock until it is done)."""
    from envtool.stack import state

    paths = project_paths(project)
    with _taking_turns(paths):
        if not state.load(paths).get("containers"):
            _abandon(project, paths)


def _check_bundle(bundle: str, rid: str, project: Any, directory: Path) -> None:
    """Every check `validate` runs on envtool.toml, run on the bundle's stack before anything starts:
    a bundle's digests only prove that it is the release it says it is, not that the release is
    harmless (anyone can write a bundle that binds the host's / and digest it)."""
    from envtool.errors import SpecError
    from envtool.spec.checks import run_checks
    from envtool.spec.locate import format_path

    errors = [SpecError(f"{bundle}: release {rid[:19]}: {format_path(path)}: {msg}", hint=hint)
              for path, msg, hint in run_checks(project, directory, release=True)]
    if errors:
        errors[0].related = list(errors[1:])
        raise errors[0]


def up_bundle(bundle: str, env: str | None = None, reporter: Any = None, on_event: Any = None,
              expect: str | None = None, thin: bool = False, origin: str | None = None) -> tuple[dict[str, Any], str]:
    """Run a release bundle: every part verified, no project directory and no package mirror needed.
    Returns (final rows, release id)."""
    from envtool.release import bundle as bundle_file

    check_host()
    store = open_store()
    rel = bundle_file.read(Path(bundle), store, thin=thin)
    if expect and rel.id != expect:
        from envtool.release.bundle import BundleError

        raise BundleError(f"{origin or bundle} is release {rel.id}, not {expect}", hint="check which file you copied")
    final = _run_release(rel, env, origin or bundle, on_event,
                         f"bundle:{os.path.abspath(bundle)}" if origin is None else origin)
    return {**final, "project": rel.project}, rel.id


def _run_release(rel: Any, env: str | None, origin: str, on_event: Any, source: str) -> dict[str, Any]:
    """Apply a release (from a bundle, or kept in the store) with every `validate` check first."""
    from envtool.release import bundle as bundle_file
    from envtool.spec.load import LoadedProject
    from envtool.spec.model import Project

    store = open_store()
    project = Project.model_validate(rel.config_for(env))
    directory = bundle_file.unpack_files(store, rel)
    _check_bundle(origin, rel.id, project, directory)
    loaded = LoadedProject(project, Path(origin), directory, env, [])

    def desired() -> Any:
        images = {ref: store.image(rel.images[ref]) for ref in {s.image for s in project.services.values()}}
        return _as_release(_stack_of(loaded, images), rel)

    return _apply(rel.project, desired, None, on_event, source)


def rollback(project: str, to: str | None = None, on_event: Any = None) -> dict[str, Any]:
    """Return the project on this host to an earlier deployed release (the one before the current,
    or `to`, a release id or its prefix), with the same start-first replacement as any update.
    Returns {"release", "env", "from", "containers"}."""
    from envtool.errors import RuntimeFailure
    from envtool.release import bundle as bundle_file
    from envtool.release import history
    from envtool.stack import state

    check_host()
    current = state.load(project_paths(project)).get("release")
    if current is None and to is None:
        raise RuntimeFailure(f"no release of project {project!r} runs on this host: nothing to roll back from",
                             hint="name the release to run with --to (see `envtool releases`)")
    target = history.rollback_target(history.deployments(open_store().root, project), current, to)
    if target is None:
        raise RuntimeFailure(f"nothing to roll back to: project {project!r} has no earlier release deployed on "
                             "this host" if to is None else f"release {to!r} was never deployed here",
                             hint="`envtool releases` lists the deployments on this host")
    rel = bundle_file.kept(open_store(), target["release"])
    final = _run_release(rel, target["env"], f"release {rel.id[:19]}", on_event, f"rollback:{current or ''}")
    return {**final, "release": rel.id, "env": target["env"], "from": current}


def _apply(project: str, make_desired: Any, services: list[str] | None, on_event: Any, source: str,
           started_early: bool = False) -> dict[str, Any]:

    from envtool.release import history
    from envtool.stack import control, state
    from envtool.stack.spec import stack_to_json

    paths = project_paths(project)
    paths.root.mkdir(parents=True, exist_ok=True)
    with _taking_turns(paths):
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
    return final


def _abandon(project: str, paths: Any) -> None:
    """A first `up` failed before anything started: its supervisor and state directory go away."""
    import shutil

    from envtool.stack import control

    try:
        control.wait(project, paths)                   # the one `up` started; never a second one
        for _ in control.request(paths, {"op": "down", "volumes": False}):
            pass
        control.wait_exited(paths)
    except EnvtoolError:
        pass
    shutil.rmtree(paths.root, ignore_errors=True)


def _recorded_specs(paths: Any) -> list[Any]:
    from envtool.stack import state
    from envtool.stack.spec import container_from_json

    return [container_from_json(r.spec) for r in state.records(state.load(paths)).values()]


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


def rootless_checks(loaded: Any, warnings: list[str] | None) -> None:
    """An ordinary user: published ports below net.ipv4.ip_unprivileged_port_start cannot be bound
    (refused before anything starts), and limits are said once when no cgroup is delegated."""
    from envtool.runtime import rootless
    from envtool.runtime.cgroups import detect

    if not rootless.active():
        return
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            floor = int(f.read().strip())
    except (OSError, ValueError):
        floor = 1024
    for name, svc in loaded.project.services.items():
        for port in svc.ports:
            published = port.published
            if published is not None and 0 < published < floor:
                from envtool.errors import InputError

                raise InputError(f"service {name!r} publishes host port {published}, below {floor}: without "
                                 "root only ports from net.ipv4.ip_unprivileged_port_start up can be bound",
                                 hint=f"publish {published + 8000 if published + 8000 < 65536 else 8080} "
                                      f"instead, or `sudo sysctl net.ipv4.ip_unprivileged_port_start={published}`")
    manager = detect()
    limited = sorted(n for n, svc in loaded.project.services.items()
                     if svc.resources.memory is not None or svc.resources.cpus is not None
                     or svc.resources.pids is not None)
    if limited and not manager.enforces and warnings is not None:
        warnings.append(f"rootless: the resource limits of {', '.join(limited)} are not enforced: "
                        f"{getattr(manager, 'why', 'no delegated cgroup')}")


def down(file: str | None = None, directory: str | None = None, volumes: bool = False,
         on_event: Any = None) -> bool:
    """Stop and remove the stack; returns False when nothing was running."""
    import shutil

    from envtool.stack import control, state

    check_host(need_overlay=False)
    name = project_name(file, directory)
    paths = project_paths(name)
    if not paths.root.exists():
        if volumes:
            _remove_volumes(name)
        _end_idle_session()
        return False
    with _taking_turns(paths):
        did = bool(state.load(paths)) or control.running(paths)
        from envtool.devloop.daemon import stop as stop_watch_daemon

        stop_watch_daemon(paths)
        if did:
            control.ensure(str(open_store().root), name, paths)
            _stream(paths, {"op": "down", "volumes": volumes}, on_event)
            control.wait_exited(paths)
        shutil.rmtree(paths.root, ignore_errors=True)
    if volumes:
        _remove_volumes(name)
    _end_idle_session()
    return did


def _end_idle_session() -> None:
    """Rootless: the last stack is down, so the session's pause process and pasta go too (`down`
    leaves no process behind); the next command starts a new session (~0.1 s)."""
    from envtool.runtime import rootless

    if not rootless.active():
        return
    base = rootless.run_dir() / "stores"
    busy = [p for p in base.glob("*/projects/*") if (p / "state.json").exists() or (p / "control.sock").exists()]
    if not busy:
        rootless.stop_session()


def _remove_volumes(project: str) -> None:
    import shutil

    vol_root = open_store().root / "volumes"
    if vol_root.is_dir():
        for d in vol_root.glob(f"{project}_*"):
            shutil.rmtree(d, ignore_errors=True)


SETTLE = 1.0        # seconds a container must stay up after `up -d` before it counts as started


def early_exits(project: str, final: dict[str, Any], window: float = SETTLE) -> list[dict[str, Any]]:
    """Containers `up` just started that exit (non-zero) or restart within `window` seconds of their
    start: reported as failed with their last log lines, where Compose would say "Started".  One
    that proved itself up (healthy, or accepting on its published port) is not waited for."""
    import time

    from envtool.stack import control

    paths = project_paths(project)
    young = {r["name"]: r for r in final.get("containers", [])
             if r.get("status") in ("running", "starting", "healthy", "unhealthy")
             and not r.get("proven") and (r.get("uptime") or 0) < window}
    if not young:
        return []
    deadline = time.monotonic() + window - min((r.get("uptime") or 0) for r in young.values())
    failed: dict[str, dict[str, Any]] = {}
    watched = dict(young)
    begun, first = time.monotonic(), True
    while time.monotonic() < deadline and watched:
        # at once, then often while a just-started app is likely to come up, then every 50 ms
        # (a `ps` is a few ms of the supervisor's time)
        if not first:
            time.sleep(0.01 if time.monotonic() - begun < 0.25 else 0.05)
        first = False
        if not (control.running(paths) and paths.socket.exists()):
            break
        for r in control.call(paths, {"op": "ps"}).get("containers", []):
            before = watched.get(r["name"])
            if before is None:
                continue
            exited = r["status"] in ("exited", "dead") and (r.get("exit_code") or 0) != 0
            if exited or (r.get("restarts") or 0) > (before.get("restarts") or 0):
                failed[r["name"]] = {**r, "log": _tail(paths.log(r["name"]), 10)}
                del watched[r["name"]]
            elif r.get("proven"):              # healthy or accepting since: nothing left to wait for
                del watched[r["name"]]
    return list(failed.values())


def _tail(path: Any, n: int) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            return f.read().decode("utf-8", "replace").splitlines()[-n:]
    except OSError:
        return []


def ps(file: str | None = None, directory: str | None = None) -> list[dict[str, Any]]:
    from envtool.stack import control, state

    paths = project_paths(project_name(file, directory))
    if control.running(paths) and paths.socket.exists():
        return list(control.call(paths, {"op": "ps"}).get("containers", []))
    rows = []
    for name, rec in sorted(state.records(state.load(paths)).items()):
        live = state.alive(rec.pid, rec.start_time)
        rows.append({"name": name, "service": rec.service, "replica": rec.spec["replica"],
                     "status": str(rec.status) if live else "exited", "health": None,
                     "pid": rec.pid if live else None, "ip": rec.address, "ports": [],
                     "uptime": None, "restarts": rec.restarts, "exit_code": rec.exit_code,
                     "oom_killed": False, "image": rec.image, "supervisor": "not running"})
    return rows


def control_services(op: str, services: list[str], file: str | None = None, directory: str | None = None
                     ) -> dict[str, Any]:
    from envtool.stack import control

    check_host(need_overlay=False)
    paths = project_paths(project_name(file, directory))
    if not control.running(paths):
        from envtool.errors import RuntimeFailure

        raise RuntimeFailure("the stack is not running", hint="run `envtool up` first")
    return _stream(paths, {"op": op, "services": services}, None)


def watch_log(project: str) -> tuple[str, Any]:
    """The watcher's entry in the stack's log stream: (name, path)."""
    from envtool.devloop.daemon import log_of

    return log_of(project_paths(project))


def log_files(file: str | None = None, directory: str | None = None, services: list[str] | None = None
              ) -> list[tuple[str, Any]]:
    """(container name, log path) for the project's containers, optionally of some services."""
    from envtool.stack import state

    paths = project_paths(project_name(file, directory))
    out = []
    for name, rec in sorted(state.records(state.load(paths)).items()):
        if services and rec.service not in services:
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
    from envtool.runtime.seccomp import bpf_for
    from envtool.stack import state
    from envtool.stack.convert import enter_spec, parse_env
    from envtool.stack.spec import container_from_json

    name = project_name(file, directory)
    matches = [r for r in state.records(state.load(project_paths(name))).values() if r.service == service]
    if not matches:
        from envtool.errors import RuntimeFailure

        raise RuntimeFailure(f"service {service!r} has no container", hint="run `envtool up` first")
    rec = next((r for r in matches if r.spec["replica"] == replica), matches[0])
    if not state.alive(rec.pid, rec.start_time) or rec.pid is None:
        from envtool.errors import RuntimeFailure

        raise RuntimeFailure(f"container {rec.spec['name']} is not running", hint="see `envtool ps`")
    spec = container_from_json(rec.spec)
    cg = detect().open(f"{state.cgroup_parent(open_store().root, name)}/{rec.runtime_id}")
    return enter_spec(spec, rec.pid, argv, cg.procs_files(),
                      bpf_for(spec.capabilities, str(open_store().cache_dir / "seccomp")),
                      parse_env(env or []), user, workdir)
