"""The one place where user-facing settings meet the runtime: → ContainerConfig.

`run_config` serves `envtool run`; services are converted here too as the stack grows.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from envtool._util.record import dataclass, field
from envtool._util.units import parse_size
from envtool.errors import UsageError
from envtool.image.store import Image, Store
from envtool.runtime.caps import effective_set
from envtool.runtime.config import BindMount, ContainerConfig, Limits, SecretFile
from envtool.stack.state import cgroup_parent


@dataclass
class RunOptions:
    command: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    memory: str | None = None
    cpus: float | None = None
    pids: int | None = None
    tty: bool = False
    init: bool = True
    hostname: str | None = None
    read_only: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    entrypoint: str | None = None
    stop_grace: float = 10.0


def parse_env(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid -e {item!r}: use NAME=value")
        if sep:
            out[key] = value
        elif key in os.environ:
            out[key] = os.environ[key]
    return out


def parse_run_volume(spec: str, store: Store) -> BindMount:
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise UsageError(f"invalid -v {spec!r}: use SOURCE:TARGET[:ro]")
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise UsageError(f"invalid -v {spec!r}: mode must be ro or rw")
    if not target.startswith("/"):
        raise UsageError(f"invalid -v {spec!r}: the container path must be absolute")
    if source.startswith((".", "/", "~")):
        source = os.path.realpath(os.path.expanduser(source))
        if not os.path.exists(source):
            raise UsageError(f"-v {spec!r}: {source} does not exist")
        return BindMount(source, target, mode == "ro")
    source = str(store.root / "volumes" / source / "_data")
    os.makedirs(source, exist_ok=True)
    return bind_beneath(source, target, mode == "ro", str(store.root / "volumes"))


def bind_beneath(source: str, target: str, read_only: bool, base: str | None) -> BindMount:
    """A bind mount whose source is resolved now (symlinks and all) and opened at every start
    refusing symlinks; when it lies under `base` (the project directory, the store's volumes) it
    must stay under it too, so a container that swaps its source for a symlink gains nothing."""
    real = os.path.realpath(source)
    root = os.path.realpath(base) if base else None
    inside = root is not None and (real + "/").startswith(root.rstrip("/") + "/")
    return BindMount(real, target, read_only, root if inside else None)


def run_config(name: str, image: Image, layer_dirs: list[str], opts: RunOptions, store: Store,
               init_path: str | None) -> ContainerConfig:
    cfg = image.config
    entrypoint = [opts.entrypoint] if opts.entrypoint else list(cfg.entrypoint or ())
    command = list(opts.command) or ([] if opts.entrypoint else list(cfg.cmd or ()))
    argv = entrypoint + command
    if not argv:
        raise UsageError("no command given and the image has no cmd or entrypoint",
                         hint="append a command: envtool run IMAGE COMMAND...")
    env = cfg.env_dict()
    env.update(parse_env(opts.env))
    limits = Limits(parse_size(opts.memory) if opts.memory else None, opts.cpus, opts.pids)
    return ContainerConfig(
        name=name, layers=tuple(layer_dirs), state_dir=str(store.containers_dir / name), argv=tuple(argv),
        env=tuple(env.items()), workdir=opts.workdir or cfg.workdir or "/",
        user=opts.user if opts.user is not None else cfg.user, hostname=opts.hostname or name[:63],
        capabilities=effective_set(opts.cap_add, opts.cap_drop), read_only=opts.read_only,
        mounts=tuple(parse_run_volume(v, store) for v in opts.volumes), limits=limits,
        init=init_path if opts.init else None, tty=opts.tty, stop_signal=signal.SIGTERM,
        stop_grace=opts.stop_grace, cgroup_parent="envtool/run", die_with_parent=True)


# ---- services ----------------------------------------------------------------------------------
def container_name(project: str, service: str, replica: int) -> str:
    return f"{project}-{service}-{replica}"


def volume_dir(store: Store, project: str, volume: str) -> str:
    return str(store.root / "volumes" / f"{project}_{volume}" / "_data")


def stack_spec(loaded: Any, images: dict[str, Image], store: Store, layer_dirs: dict[str, list[str]]) -> Any:
    """Project + built images → StackSpec (every replica of every service)."""
    from envtool.spec.interpolate import read_dotenv
    from envtool.stack.spec import ContainerSpec, Health, Mount, Port, SecretMount, StackSpec

    project, directory = loaded.project, loaded.directory
    name = project.name
    out = StackSpec(name, str(directory), project.project.subnet, env=loaded.env,
                    volumes=sorted(project.volumes))
    for svc_name, svc in project.services.items():
        image = images[svc.image]
        cfg = image.config
        entrypoint = list(svc.entrypoint) if svc.entrypoint is not None else list(cfg.entrypoint or ())
        command = list(svc.command) if svc.command is not None else (
            [] if svc.entrypoint is not None else list(cfg.cmd or ()))
        env = cfg.env_dict()
        for f in svc.env_file:
            env.update(read_dotenv((directory / f).read_text()))
        env.update(svc.environment)
        mounts = []
        mounted = [v.target.rstrip("/") for v in svc.volumes if v.type == "bind" or v.type == "volume" and v.source]
        for v in svc.volumes:
            if v.type == "bind":
                src = os.path.realpath(os.path.join(directory, os.path.expanduser(v.source or "")))
                base = str(directory)
            elif v.type == "volume" and v.source:
                src = volume_dir(store, name, v.source)
                base = str(store.root / "volumes")
            elif v.type == "volume" and any(v.target.startswith(t + "/") for t in mounted):
                # an anonymous volume inside a bind (`./app:/app` + `/app/node_modules`): a volume of its
                # own, filled from the image, mounted over the bind, so the image's node_modules stay
                import hashlib

                anon = "anon-" + svc_name + "-" + hashlib.sha256(v.target.encode()).hexdigest()[:8]
                src, base = volume_dir(store, name, anon), str(store.root / "volumes")
            else:
                continue  # other anonymous volumes and tmpfs live in the container's own upper dir
            bind = bind_beneath(src, v.target, v.read_only, base)
            mounts.append(Mount(bind.source, bind.target, bind.read_only, bind.beneath))
        mounts.sort(key=lambda m: m.target.rstrip("/").count("/"))     # a mount inside another goes after it
        hc = svc.healthcheck
        health = (Health(tuple(hc.command), hc.interval, hc.timeout, hc.retries, hc.start_period)
                  if hc and not hc.disable else None)
        caps = tuple(sorted(effective_set(svc.cap_add, svc.cap_drop)))
        update = update_policy(svc)
        secrets = []
        for sec in svc.secrets:
            src = project.secrets[sec.source]
            where = (f"env:{src.environment}" if src.environment is not None else
                     "file:" + os.path.abspath(os.path.join(directory, os.path.expanduser(src.file or ""))))
            secrets.append(SecretMount(sec.source, sec.target or sec.source, where, "", sec.uid, sec.gid, sec.mode))
        for replica in range(1, svc.replicas + 1):
            cname = container_name(name, svc_name, replica)
            out.containers.append(ContainerSpec(
                name=cname, service=svc_name, replica=replica, image=image.manifest_digest,
                layers=tuple(layer_dirs[svc.image]), argv=tuple(entrypoint + command),
                env=tuple(sorted(env.items())), workdir=svc.workdir or cfg.workdir or "/",
                user=svc.user if svc.user is not None else cfg.user, capabilities=caps, read_only=svc.read_only,
                mounts=tuple(mounts), memory=svc.resources.memory, cpus=svc.resources.cpus,
                pids=svc.resources.pids, init=svc.init, stop_signal=svc.stop_signal,
                stop_grace=svc.stop_grace_period, restart=svc.restart.value, health=health,
                depends_on=tuple(sorted((k, v.value) for k, v in svc.depends_on.items())),
                ports=tuple(Port(p.host_ip, p.published, p.target, p.protocol.value) for p in svc.ports),
                hostname=svc.hostname or (svc_name if svc.replicas == 1 else f"{svc_name}-{replica}"),
                update=update, aliases=tuple(svc.aliases), secrets=tuple(secrets),
                networks=tuple(sorted(svc.networks or ["default"])) if project.networks else ()))
    return out


def update_policy(svc: Any) -> Any:
    """The service's [update] settings, with the order decided (Service.update_order)."""
    from envtool.stack.spec import UpdatePolicy

    order, why = svc.update_order()
    u = svc.update
    return UpdatePolicy(order, u.parallelism, u.monitor, u.failure_action.value, why)


def missing_sources(stack: Any, store: Store) -> list[tuple[str, str]]:
    """("volume", name) or ("folder", path) for every bind source or named volume that does not
    exist yet: what `up` creates (make_sources) and `up --dry-run` says it would."""
    volumes = os.path.realpath(store.root / "volumes")
    out: dict[str, tuple[str, str]] = {}
    for c in stack.containers:
        for m in c.mounts:
            if m.source in out or os.path.exists(m.source):
                continue
            under_volumes = m.beneath == volumes
            out[m.source] = ("volume", os.path.basename(os.path.dirname(m.source))) if under_volumes \
                else ("folder", m.source)
    return list(out.values())


def resolve_secrets(stack: Any, store: Store) -> Any:
    """Every secret's source checked on this host before anything starts (a missing one names the
    secret and the service); environment secrets written to the store (0400, in its 0700 root) so
    the supervisor can read them at every start.  Returns the stack with each secret's path."""
    from envtool._util.record import replace
    from envtool.errors import SpecError

    values: dict[str, str] = {}
    containers = []
    for c in stack.containers:
        mounts = []
        for m in c.secrets:
            kind, _, where = m.source.partition(":")
            if kind == "file":
                if not os.path.isfile(where):
                    raise SpecError(f"secret {m.name!r} of service {c.service!r}: {where} does not exist",
                                    hint="create the file, or point the secret at another one "
                                         f"([secrets.{m.name}] file = ...)")
                path = where
            else:
                if where not in os.environ:
                    raise SpecError(f"secret {m.name!r} of service {c.service!r}: the environment variable "
                                    f"{where} is not set", hint=f"export {where}=... before `envtool up`")
                path = str(store.root / "secrets" / stack.project / m.name)
                if values.get(path) != os.environ[where]:
                    values[path] = os.environ[where]
                    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o400)
                    with os.fdopen(fd, "w") as f:
                        f.write(os.environ[where])
                    os.replace(path + ".tmp", path)
            mounts.append(replace(m, path=path))
        containers.append(replace(c, secrets=tuple(mounts)))
    stack.containers = containers
    return stack


def read_secrets(spec: Any) -> tuple[SecretFile, ...]:
    """The secrets' values, read now (at each start) from their files; bounded, regular files only."""
    import stat

    out = []
    for m in spec.secrets:
        try:
            fd = os.open(m.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise UsageError(f"secret {m.name!r}: {m.path} is not a regular file")
                data = os.read(fd, 1024 * 1024 + 1)
            finally:
                os.close(fd)
        except OSError as e:
            raise UsageError(f"secret {m.name!r}: cannot read {m.path}: {e.strerror}") from None
        if len(data) > 1024 * 1024:
            raise UsageError(f"secret {m.name!r}: {m.path} is larger than 1 MiB")
        out.append(SecretFile(m.target, data, m.uid, m.gid, m.mode))
    return tuple(out)


def make_sources(stack: Any, store: Store) -> None:
    """Create the bind sources and volumes that do not exist yet (as Compose does); a new volume
    starts with what the image has at its mount point (owner and mode included), as Docker's do."""
    from envtool.image.stage_copy import populate_volume

    volumes = os.path.realpath(store.root / "volumes")
    for c in stack.containers:
        for m in c.mounts:
            if os.path.lexists(m.source):
                continue
            if m.beneath == volumes:
                staging = m.source + ".new"
                if os.path.lexists(staging):
                    import shutil

                    shutil.rmtree(staging)
                os.makedirs(staging)
                populate_volume(list(c.layers), m.target, staging)
                os.rename(staging, m.source)
            else:
                os.makedirs(m.source, exist_ok=True)


def service_config(spec: Any, store: Store, netns: str, hosts: tuple[tuple[str, str], ...], resolv_conf: str,
                   init_path: str | None, project: str, instance: str | None = None) -> ContainerConfig:
    """ContainerSpec (+ its network) → ContainerConfig for the runtime; `instance` is the runtime
    id (state dir, cgroup) when it is not the container's name (a replacement)."""
    rid = instance or spec.name
    return ContainerConfig(
        name=rid, layers=spec.layers, state_dir=str(store.containers_dir / rid), argv=spec.argv,
        env=spec.env, workdir=spec.workdir, user=spec.user, hostname=spec.hostname,
        capabilities=frozenset(spec.capabilities), read_only=spec.read_only,
        mounts=tuple(BindMount(m.source, m.target, m.read_only, m.beneath) for m in spec.mounts),
        limits=Limits(spec.memory, spec.cpus, spec.pids), init=init_path if spec.init else None,
        netns=netns, hosts=hosts, resolv_conf=resolv_conf,
        stop_signal=int(getattr(signal.Signals, spec.stop_signal)), stop_grace=spec.stop_grace,
        cgroup_parent=cgroup_parent(store.root, project), secrets=read_secrets(spec))


def enter_spec(spec: Any, pid: int, argv: tuple[str, ...] | list[str], cgroup_procs: list[str],
               seccomp_bpf: bytes | None, env: dict[str, str] | None = None, user: str | None = None,
               workdir: str | None = None) -> Any:
    """ContainerSpec → the EnterSpec of a process run inside that running container (exec, a
    healthcheck): the container's own user, environment, working directory, capabilities and
    seccomp filter, unless the caller overrides the first three."""
    from envtool.runtime.enter import EnterSpec

    env_map = dict(spec.env)
    env_map.update(env or {})
    return EnterSpec(pid, tuple(argv), tuple(env_map.items()), workdir or spec.workdir,
                     spec.user if user is None else user, frozenset(spec.capabilities), tuple(cgroup_procs),
                     seccomp_bpf)
