"""The one place where user-facing settings meet the runtime: → ContainerConfig.

`run_config` serves `envtool run`; services are converted here too as the stack grows.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

from envtool._util.units import parse_size
from envtool.errors import UsageError
from envtool.image.store import Image, Store
from envtool.runtime.caps import effective_set
from envtool.runtime.config import BindMount, ContainerConfig, Limits


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
        source = os.path.abspath(os.path.expanduser(source))
        if not os.path.exists(source):
            raise UsageError(f"-v {spec!r}: {source} does not exist")
    else:
        source = str(store.root / "volumes" / source / "_data")
        os.makedirs(source, exist_ok=True)
    return BindMount(source, target, mode == "ro")


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
