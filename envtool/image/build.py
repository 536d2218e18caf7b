"""Execute a recipe plan: base → pip/copy/run layers → config → image in the store.

Each step's result is cached under its chained key (recipe.step_key), so an unchanged recipe builds
in the time it takes to hash its copied files.  Run steps execute in envtool's own runtime, in a
network namespace of their own with NAT to the outside (image/step_network.py), and their overlay diff
becomes the layer.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from envtool._util.atomic import write_atomic
from envtool._util.digest import digest_hex
from envtool._util.ignore import read_patterns
from envtool._util.linux import DEFAULT_CAPABILITIES
from envtool._util.record import asdict, dataclass, field
from envtool._util.wait import readable
from envtool.errors import BuildError, ContainerError, ImageNotFound
from envtool.image import layer as layers_mod
from envtool.image import oci
from envtool.image.recipe import Config, Copy, Plan, Run, plan_recipe, step_key
from envtool.image.store import Image, Layer, Store
from envtool.spec.imageref import ImageRef
from envtool.spec.model import ImageRecipe

if TYPE_CHECKING:
    from envtool.image.step_network import StepNetwork

RUNNER = 2      # bump when what a run step's layer contains changes for the same inputs
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
BUILD_CA = "/envtool-build-ca.crt"


class Reporter(Protocol):
    def step(self, image: str, index: int, total: int, text: str) -> None: ...
    def output(self, image: str, line: str) -> None: ...
    def done(self, image: str, text: str, cached: bool, seconds: float) -> None: ...


class SilentReporter:
    def step(self, image: str, index: int, total: int, text: str) -> None:
        pass

    def output(self, image: str, line: str) -> None:
        pass

    def done(self, image: str, text: str, cached: bool, seconds: float) -> None:
        pass


@dataclass
class StepResult:
    layers: list[Layer]
    config: oci.ImageConfig
    packages: list[dict[str, str]] = field(default_factory=list)
    pip: list[dict[str, str]] = field(default_factory=list)
    base: str = ""                         # manifest digest of a pulled registry base


@dataclass
class BuildResult:
    name: str
    image: Image
    cached: bool
    seconds: float
    packages: list[dict[str, str]]
    pip: list[dict[str, str]] = field(default_factory=list)
    base: str = ""


def _has_cycle(graph: dict[str, list[str]]) -> bool:
    seen: set[str] = set()
    path: set[str] = set()

    def visit(n: str) -> bool:
        if n in path:
            return True
        if n in seen:
            return False
        seen.add(n)
        path.add(n)
        found = any(visit(d) for d in graph.get(n, ()))
        path.discard(n)
        return found

    return any(visit(n) for n in graph)


def build_jobs() -> int:
    """How many recipes build side by side: ENVTOOL_BUILD_JOBS, else the cores, at most 4 (each
    Debian base is one mmdebstrap: downloads from the mirror, then dpkg's work on one core)."""
    value = os.environ.get("ENVTOOL_BUILD_JOBS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, min(4, len(os.sched_getaffinity(0))))


def image_tag(project: str, name: str) -> str:
    return f"{project}/{name}:latest"


class Builder:
    def __init__(self, store: Store, project: str, directory: Path, recipes: dict[str, ImageRecipe],
                 reporter: Reporter | None = None, pins: dict[str, dict[str, str]] | None = None,
                 refresh: frozenset[str] = frozenset(),
                 pip_pins: dict[str, list[dict[str, str]]] | None = None,
                 base_pins: dict[str, str] | None = None) -> None:
        """pins: image -> {package: version} from envtool.lock; refresh: images whose Debian base is
        resolved again instead of taken from the step cache (`envtool lock`)."""
        self.pins = pins or {}
        self.pip_pins = pip_pins or {}
        self.base_pins = base_pins or {}
        self.refresh = refresh
        self.store = store
        self.project = project
        self.directory = directory
        self.recipes = recipes
        self.reporter = reporter or SilentReporter()
        self.built: dict[str, BuildResult] = {}

    # ---- cache ----------------------------------------------------------------------------------
    def _cache_path(self, key: str) -> Path:
        return self.store.cache_dir / "steps" / f"{digest_hex(key)}.json"

    def _cached(self, key: str) -> StepResult | None:
        try:
            doc = json.loads(self._cache_path(key).read_text())
        except (OSError, ValueError):
            return None
        result = StepResult([Layer(**d) for d in doc["layers"]], oci.ImageConfig.from_json(doc["config"]),
                            doc.get("packages", []), doc.get("pip", []), doc.get("base", ""))
        if all(self.store.has_blob(layer.digest) for layer in result.layers):
            return result
        return None

    def _remember(self, key: str, result: StepResult) -> None:
        doc = {"layers": [asdict(layer) for layer in result.layers], "config": result.config.to_json(),
               "packages": result.packages, "pip": result.pip, "base": result.base}
        write_atomic(self._cache_path(key), json.dumps(doc, sort_keys=True))

    # ---- build ----------------------------------------------------------------------------------
    def needs(self, name: str) -> list[str]:
        """The project's recipes this one builds on (`from` another recipe) or copies from."""
        plan = plan_recipe(name, self.recipes[name])
        out = [plan.base.ref] if plan.base.kind == "image" else []
        out += [s.source for s in plan.steps if isinstance(s, Copy) and s.source]
        return [n for n in dict.fromkeys(out) if n in self.recipes]

    def build_all(self, names: list[str], jobs: int = 1) -> dict[str, BuildResult]:
        """Build `names` and what they need, up to `jobs` recipes at a time: a recipe starts once
        the recipes it needs are built.  The first failure stops new starts and is raised once the
        running builds end.  A cycle among the recipes builds one at a time, where build() names it."""
        graph: dict[str, list[str]] = {}
        todo = [n for n in names if n in self.recipes]
        while todo:
            n = todo.pop()
            if n not in graph:
                graph[n] = self.needs(n)
                todo.extend(graph[n])
        if jobs <= 1 or len(graph) <= 1 or _has_cycle(graph):
            return {n: self.build(n) for n in names}
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        pending = {n: graph[n] for n in names if n in graph}
        pending.update((n, d) for n, d in graph.items() if n not in pending)    # asked-for first
        running: dict[Future[BuildResult], str] = {}
        failed: BaseException | None = None
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="build") as pool:
            while (pending and failed is None) or running:
                if failed is None:
                    for n in [n for n, d in pending.items() if all(x in self.built for x in d)]:
                        if len(running) >= jobs:
                            break
                        del pending[n]
                        running[pool.submit(self.build, n)] = n
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    del running[f]
                    if f.exception() is not None and failed is None:
                        failed = f.exception()
        if failed is not None:
            raise failed
        return {n: self.build(n) for n in names}

    def build(self, name: str, stack: tuple[str, ...] = ()) -> BuildResult:
        if name in self.built:
            return self.built[name]
        if name not in self.recipes:
            raise ImageNotFound(f"unknown image recipe {name!r}")
        t0 = time.monotonic()
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0") or 0)
        plan = plan_recipe(name, self.recipes[name], epoch)
        total = 1 + len(plan.steps)
        all_cached = True

        self.reporter.step(name, 1, total, plan.base.describe())
        ts = time.monotonic()
        key, state, cached = self._base(plan, stack)
        all_cached &= cached
        self.reporter.done(name, plan.base.describe(), cached, time.monotonic() - ts)
        for i, step in enumerate(plan.steps, start=2):
            self.reporter.step(name, i, total, step.describe())
            ts = time.monotonic()
            key, state, cached = self._step(plan, key, state, step, stack)
            all_cached &= cached
            self.reporter.done(name, step.describe(), cached, time.monotonic() - ts)
        config = _apply_config(state.config, plan.config)
        created = datetime.fromtimestamp(plan.epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        image = self.store.write_image(config, state.layers, created)
        self.store.tag(image_tag(self.project, name), image, {"dev.envtool.recipe-key": key})
        result = BuildResult(name, image, all_cached, time.monotonic() - t0, state.packages, state.pip, state.base)
        self.built[name] = result
        return result

    def _base(self, plan: Plan, stack: tuple[str, ...]) -> tuple[str, StepResult, bool]:
        base = plan.base
        if base.kind == "scratch":
            return step_key("", base), StepResult([], oci.ImageConfig()), True
        if base.kind == "image":
            if base.ref in stack:
                raise BuildError(f"image recipes form a cycle: {' -> '.join(stack + (base.ref,))}")
            parent = self.build(base.ref, stack + (plan.name,))
            return (step_key("", base, parent.image.manifest_digest),
                    StepResult(list(parent.image.layers), parent.image.config, parent.packages), parent.cached)
        if base.kind == "oci-archive":
            from envtool.image.sources.oci_archive import import_archive

            path = base.ref if os.path.isabs(base.ref) else str(self.directory / base.ref)
            img = import_archive(path, self.store)
            return step_key("", base, img.manifest_digest), StepResult(list(img.layers), img.config), False
        if base.kind == "debian":
            return self._debian(plan)
        from envtool.image.sources.registry import pull

        pinned = self.base_pins.get(plan.name)            # the lock names the base by digest
        ref = ImageRef.parse(base.ref).pinned(pinned) if pinned else base.ref
        img = pull(ref, self.store)
        return (step_key("", base, img.manifest_digest),
                StepResult(list(img.layers), img.config, base=img.manifest_digest), False)

    def _debian(self, plan: Plan) -> tuple[str, StepResult, bool]:
        from envtool.image.sources import debian

        base = plan.base
        sources = debian.sources_for(base.ref, base.mirror)
        pins = self.pins.get(plan.name)

        def key_for(pinned: dict[str, str] | None) -> str:
            return step_key("", base, f"{sources}\n{plan.epoch}\n{oci.host_arch()}\n{sorted((pinned or {}).items())}")

        def pinned_key(result: StepResult) -> str:
            """Unpinned, the steps above chain on what was resolved: the key a build pinned to it has,
            so `build` after `lock` finds every step cached."""
            if pins is not None or not result.packages:
                return key
            return key_for({p["name"].split(":")[0]: p["version"] for p in result.packages})

        key = key_for(pins)
        cached = None if plan.name in self.refresh else self._cached(key)
        if cached is not None:
            return pinned_key(cached), cached, True
        out, staging = self.store.staging_file(".tar")
        out.close()
        try:
            pkgs = debian.build_rootfs(base.ref, list(base.packages), base.variant, sources, staging, plan.epoch,
                                       lambda line: self.reporter.output(plan.name, line), pins=pins)
            digest, size = self.store.put_file(staging)
        finally:
            if os.path.exists(staging):
                os.unlink(staging)
        result = StepResult([Layer(digest, digest, size, oci.LAYER_TAR)],
                            oci.ImageConfig(env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
                                            cmd=("/bin/sh",) if base.variant != "extract" else None),
                            [{"name": p.name, "version": p.version, "arch": p.arch, "sha256": p.sha256}
                             for p in pkgs])
        self._remember(key, result)
        chain = pinned_key(result)
        if chain != key:                  # what was just resolved is what a build pinned to it gives
            self._remember(chain, result)
        return chain, result, False

    def _step(self, plan: Plan, parent: str, state: StepResult, step: Copy | Run, stack: tuple[str, ...] = ()
              ) -> tuple[str, StepResult, bool]:
        if isinstance(step, Copy):
            layer = (self._copy_from_image(plan, state, step, stack) if step.source
                     else self._copy_layer(plan, state, step))
            key = step_key(parent, step, layer.diff_id)
            return key, StepResult(state.layers + [layer], state.config, state.packages, state.pip, state.base), \
                self._seen(key)
        pip = state.pip
        command = step.command
        if step.pip:                      # resolved once (or taken from the lock), installed by hash
            pins = self.pip_pins.get(plan.name) or (
                None if plan.name in self.refresh else self._cached_pip(parent, step))
            if pins is None:
                pins = self._resolve_pip(plan, state, step)
                self._remember_pip(parent, step, pins)
            pip = pins
            command = pinned_pip_command(pins)
        # a run step's output depends on the environment it runs with, so that is part of its key
        key = step_key(parent, step, f"runner={RUNNER} env={sorted(plan.config.env)} epoch={plan.epoch} pip={pip}")
        cached = self._cached(key)
        if cached is not None:
            return key, cached, True
        layer = self._run_in_container(plan, state, command, step.describe(),
                                       lambda upper: self._layer_from_upper(upper, plan.epoch), step.workdir)
        result = StepResult(state.layers + [layer], state.config, state.packages, pip, state.base)
        self._remember(key, result)
        return key, result, False

    # ---- pip: resolve to exact versions and wheel hashes, then install by hash ------------------
    def _pip_cache(self, parent: str, step: Run) -> Path:
        return self._cache_path(step_key(parent, step, "pip-resolution"))

    def _cached_pip(self, parent: str, step: Run) -> list[dict[str, str]] | None:
        try:
            return list(json.loads(self._pip_cache(parent, step).read_text()))
        except (OSError, ValueError):
            return None

    def _remember_pip(self, parent: str, step: Run, pins: list[dict[str, str]]) -> None:
        write_atomic(self._pip_cache(parent, step), json.dumps(pins))

    def _resolve_pip(self, plan: Plan, state: StepResult, step: Run) -> list[dict[str, str]]:
        report = "/tmp/envtool-pip-report.json"
        quoted = " ".join("'" + r.replace("'", "'\\''") + "'" for r in step.pip)
        command = (f"PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 python3 -m pip install --dry-run "
                   f"--ignore-installed --quiet --break-system-packages --report {report} {quoted}")

        def read_report(upper: str) -> list[dict[str, str]]:
            try:
                with open(os.path.join(upper, report.lstrip("/"))) as f:
                    doc = json.load(f)
            except (OSError, ValueError) as e:
                raise BuildError(f"image {plan.name!r}: pip wrote no usable report: {e}",
                                 hint="the base needs python3-pip (packages = [\"python3-pip\"])") from None
            return parse_pip_report(doc)

        return self._run_in_container(plan, state, command, f"resolve {step.describe()}", read_report)

    def _seen(self, key: str) -> bool:
        path = self._cache_path(key)
        seen = path.exists()
        if not seen:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
        return seen

    def _write_layer(self, writer: layers_mod.LayerWriter) -> Layer:
        out, staging = self.store.staging_file(".tar")
        try:
            with out:
                writer.write(out)
            digest, size = self.store.put_file(staging)
        finally:
            if os.path.exists(staging):
                os.unlink(staging)
        return Layer(digest, digest, size, oci.LAYER_TAR)

    def _copy_layer(self, plan: Plan, state: StepResult, step: Copy) -> Layer:
        src = self.directory / step.src
        if not src.exists():
            raise BuildError(f"image {plan.name!r}: copy source {step.src!r} does not exist")
        owner = self._owner(state, step.chown) if step.chown else layers_mod.Owner()
        writer = layers_mod.LayerWriter(plan.epoch)
        patterns = read_patterns(str(self.directory))
        layers_mod.add_copy(writer, str(src), step.dst, owner, step.mode, patterns, base=str(self.directory))
        return self._write_layer(writer)

    def _copy_from_image(self, plan: Plan, state: StepResult, step: Copy, stack: tuple[str, ...]) -> Layer:
        """A copy out of another recipe's image (multi-stage): that image is built first, its layers
        are mounted read-only in a private mount namespace, and `src` is resolved inside that root
        (symlinks included, never leaving it), so a hostile stage cannot hand the build host files."""
        from envtool.image.stage_copy import copy_from_layers

        assert step.source is not None
        if step.source == plan.name or step.source in stack:
            raise BuildError(f"image recipes form a cycle: {' -> '.join(stack + (plan.name, step.source))}")
        source = self.build(step.source, stack + (plan.name,))
        owner = self._owner(state, step.chown) if step.chown else layers_mod.Owner()
        dirs = self.store.unpack_layers(source.image.layers)
        out, staging = self.store.staging_file(".tar")
        out.close()
        try:
            copy_from_layers(dirs, step.src, step.dst, owner, step.mode, plan.epoch, staging,
                             what=f"image {plan.name!r}: copy from {step.source!r}")
            digest, size = self.store.put_file(staging)
        finally:
            if os.path.exists(staging):
                os.unlink(staging)
        return Layer(digest, digest, size, oci.LAYER_TAR)

    def _owner(self, state: StepResult, chown: str) -> layers_mod.Owner:
        from envtool.runtime.users import UnknownUser, resolve_user

        dirs = self.store.unpack_layers(state.layers)
        passwd = _read_top(dirs, "etc/passwd")
        group = _read_top(dirs, "etc/group")
        try:
            user = resolve_user(chown, passwd, group)
        except UnknownUser as e:
            raise BuildError(f"copy chown={chown!r}: {e}") from None
        return layers_mod.Owner(user.uid, user.gid)

    def _layer_from_upper(self, upper: str, epoch: int) -> Layer:
        writer = layers_mod.LayerWriter(epoch)
        layers_mod.add_upper_dir(writer, upper)
        return self._write_layer(writer)

    def _run_in_container(self, plan: Plan, state: StepResult, command: str, describe: str,
                          on_upper: Callable[[str], Any], workdir: str | None = None) -> Any:
        """Run `command` with /bin/sh in a build container over the current layers, in a network
        namespace of its own (NAT to the outside, nothing of the host's), and hand its upper dir
        (the filesystem diff) to `on_upper`."""
        from envtool.image.step_network import step_network
        from envtool.runtime.config import BindMount

        if not state.layers:
            raise BuildError(f"image {plan.name!r}: `{describe}` needs a base with a shell, not scratch")
        dirs = self.store.unpack_layers(state.layers)
        # SOURCE_DATE_EPOCH: tools that stamp dates (useradd's shadow entries, pip, gzip) use the
        # build's fixed epoch instead of today, so the step's layer is the same on any day
        env = {**state.config.env_dict(), **dict(plan.config.env), "SOURCE_DATE_EPOCH": str(plan.epoch)}
        mounts: tuple[BindMount, ...] = ()
        if os.path.isfile(HOST_CA) and os.environ.get("ENVTOOL_BUILD_CA", "1") != "0":
            # steps that fetch over TLS trust what the host trusts (proxies that re-sign TLS);
            # the bundle is bound, not copied, and its mountpoint is removed before the diff
            mounts = (BindMount(HOST_CA, BUILD_CA, read_only=True),)
            env.update({k: BUILD_CA for k in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                                              "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO")})
        with step_network() as net:
            return self._run_step(plan, dirs, env, mounts, state, command, describe, on_upper, net, workdir)

    def _run_step(self, plan: Plan, dirs: list[str], env: dict[str, str], mounts: tuple[Any, ...],
                  state: StepResult, command: str, describe: str, on_upper: Callable[[str], Any],
                  net: StepNetwork, workdir: str | None) -> Any:
        from envtool.runtime import launcher
        from envtool.runtime.config import ContainerConfig

        name = f"build-{secrets.token_hex(6)}"
        cfg = ContainerConfig(
            name=name, layers=tuple(dirs), state_dir=str(self.store.containers_dir / name),
            argv=("/bin/sh", "-c", command), env=tuple(sorted(env.items())),
            workdir=workdir or state.config.workdir or "/", hostname="envtool-build",
            capabilities=frozenset(DEFAULT_CAPABILITIES), netns=net.netns, resolv_conf=net.resolv_conf,
            cgroup_parent="envtool/build", mounts=mounts)
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            try:
                c = launcher.start(cfg, stdio=(devnull, w, w), seccomp_cache=str(self.store.cache_dir / "seccomp"))
            except ContainerError as e:
                raise BuildError(f"image {plan.name!r}: `{describe}`: {e.message}",
                                 hint="run steps need /bin/sh in the image" if "/bin/sh" in e.message else e.hint
                                 ) from None
            finally:
                os.close(devnull)
                os.close(w)
            tail = _pump_lines(r, lambda line: self.reporter.output(plan.name, line))
            info = launcher.reap(c)
            try:
                if info is None or info.code != 0:
                    code = info.code if info else "?"
                    raise BuildError(f"image {plan.name!r}: `{describe}` failed with exit code {code}"
                                     + (": " + " / ".join(tail[-3:]) if tail else ""),
                                     hint="fix the command; its full output is shown with --progress=plain")
                _drop_mountpoints(cfg.upper)
                return on_upper(cfg.upper)
            finally:
                launcher.cleanup(c, remove_state=True)
        finally:
            os.close(r)


# paths the runtime mounts over during a step: whatever the upper dir holds there is a mountpoint
# the runtime created (writes went to the mounts), never the step's work
MOUNTPOINTS = ("dev", "proc", "sys", "etc/hosts", "etc/hostname", "etc/resolv.conf", BUILD_CA.lstrip("/"))


def _drop_mountpoints(upper: str) -> None:
    """Remove the runtime's mountpoints from a step's upper dir, through fds and never following a
    symlink: the step owns everything in there, and an `etc -> /etc` it left behind must not
    make the host delete its own /etc/hosts."""
    import errno
    import shutil
    import stat

    from envtool.errors import SyscallError
    from envtool.runtime.syscalls import RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS, openat2

    top = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for rel in MOUNTPOINTS:
            parent, _, name = rel.rpartition("/")
            try:
                pfd = openat2(top, parent or ".", os.O_RDONLY | os.O_DIRECTORY,
                              RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
            except SyscallError as e:
                if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EXDEV):
                    continue          # no such parent in the diff, or the step made it a symlink
                raise
            try:
                try:
                    st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(name, dir_fd=pfd)        # the fd-based walk: no symlink followed
                else:
                    os.unlink(name, dir_fd=pfd)
            finally:
                os.close(pfd)
    finally:
        os.close(top)


def parse_pip_report(doc: dict[str, Any]) -> list[dict[str, str]]:
    """pip's installation report → [{name, version, sha256}] of every distribution, sorted."""
    out = []
    for item in doc.get("install", []):
        meta = item.get("metadata", {})
        archive = (item.get("download_info") or {}).get("archive_info") or {}
        sha = (archive.get("hashes") or {}).get("sha256") or (archive.get("hash") or "").partition("=")[2]
        if not sha:
            raise BuildError(f"pip did not report a sha256 for {meta.get('name')}",
                             hint="only index or archive installs can be locked (not VCS or local paths)")
        out.append({"name": meta.get("name", ""), "version": meta.get("version", ""), "sha256": sha})
    return sorted(out, key=lambda d: d["name"].lower())


def pinned_pip_command(pins: list[dict[str, str]]) -> str:
    """Install exactly the locked distributions, each checked against its wheel hash, with no
    resolution left to pip (--no-deps) and no bytecode."""
    lines = " ".join(f"'{p['name']}=={p['version']} --hash=sha256:{p['sha256']}'" for p in pins)
    return ("printf '%s\\n' " + lines + " > /tmp/envtool-requirements.txt && "
            "PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 python3 -m pip install --no-compile --no-deps "
            "--require-hashes --break-system-packages --root-user-action=ignore -r /tmp/envtool-requirements.txt; "
            "rc=$?; rm -f /tmp/envtool-requirements.txt; exit $rc")


def _pump_lines(fd: int, on_line: Callable[[str], None]) -> list[str]:
    buf, tail = b"", list[str]()
    while True:
        readable([fd])
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            tail = (tail + [line])[-20:]
            on_line(line)
    if buf:
        line = buf.decode("utf-8", "replace")
        tail.append(line)
        on_line(line)
    return tail


def _read_top(dirs: list[str], rel: str) -> str:
    for d in reversed(dirs):
        p = os.path.join(d, rel)
        if os.path.isfile(p) and not os.path.islink(p):
            with open(p, errors="replace") as f:
                return f.read()
    return ""


def _apply_config(base: oci.ImageConfig, cfg: Config) -> oci.ImageConfig:
    env = base.env_dict()
    env.update(dict(cfg.env))
    entrypoint = cfg.entrypoint if cfg.entrypoint is not None else base.entrypoint
    cmd = cfg.cmd if cfg.cmd is not None else (None if cfg.entrypoint is not None else base.cmd)
    return oci.ImageConfig(tuple(f"{k}={v}" for k, v in env.items()), entrypoint or None, cmd,
                           cfg.workdir or base.workdir, cfg.user or base.user)
