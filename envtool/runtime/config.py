"""ContainerConfig: everything the runtime needs to start one container, as frozen data.

Built by stack/convert.py (services) or cli `run`; validated here before any side effect.
"""

from __future__ import annotations

import os
import re
import signal

from envtool._util.linux import CAPABILITIES
from envtool._util.record import dataclass, field
from envtool.errors import InputError


@dataclass(frozen=True)
class BindMount:
    source: str            # host path (absolute, free of symlinks: it is opened refusing any)
    target: str            # container path (absolute)
    read_only: bool = False
    beneath: str | None = None   # a directory the source must stay under (project dir, volumes dir)


@dataclass(frozen=True)
class SecretFile:
    """/run/secrets/<target> in the container: a file on a tmpfs, read-only; its bytes never
    appear in a repr, a log line or an error."""
    target: str
    data: bytes = field(repr=False)
    uid: int | None = None          # None: the container's user
    gid: int | None = None
    mode: int = 0o400


@dataclass(frozen=True)
class Limits:
    memory: int | None = None       # bytes
    cpus: float | None = None
    pids: int | None = None


@dataclass(frozen=True)
class ContainerConfig:
    name: str                                    # unique on the host, e.g. "shop-web-1" or "run-1a2b3c"
    layers: tuple[str, ...]                      # unpacked layer dirs, bottom first
    state_dir: str                               # holds upper/, work/, rootfs/, hosts, hostname
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    workdir: str = "/"
    user: str = ""                               # "", "name", "uid", "uid:gid", "name:group"
    hostname: str = ""
    capabilities: frozenset[str] = frozenset()   # the container's effective/bounding set
    read_only: bool = False
    mounts: tuple[BindMount, ...] = ()
    limits: Limits = field(default_factory=Limits)
    init: str | None = None                      # host path of a static init (tini) to run as PID 1
    tty: bool = False
    netns: str | None = None                     # None = new netns (loopback only), "host", or a netns path
    hosts: tuple[tuple[str, str], ...] = ()      # extra /etc/hosts entries (address, names)
    resolv_conf: str | None = None               # content of /etc/resolv.conf; None = keep the image's
    seccomp: bool = True
    stop_signal: int = signal.SIGTERM
    stop_grace: float = 10.0
    cgroup_parent: str = "envtool"
    die_with_parent: bool = False                # SIGKILL the container if its launcher dies (run)
    secrets: tuple[SecretFile, ...] = ()         # files under /run/secrets

    def __post_init__(self) -> None:
        validate(self)

    @property
    def rootfs(self) -> str:
        return os.path.join(self.state_dir, "rootfs")

    @property
    def upper(self) -> str:
        return os.path.join(self.state_dir, "upper")

    @property
    def work(self) -> str:
        return os.path.join(self.state_dir, "work")

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)


def validate(cfg: ContainerConfig) -> None:
    """Refuse impossible configurations before anything is created (bubblewrap's checks)."""
    problems: list[str] = []
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}", cfg.name):
        problems.append("the name must be letters, digits, '_', '.', '-' (at most 128)")
    if not cfg.argv:
        problems.append("no command: the image has no cmd/entrypoint and none was given")
    if not cfg.layers:
        problems.append("no layers: the image is empty")
    if not cfg.workdir.startswith("/"):
        problems.append(f"workdir {cfg.workdir!r} must be absolute")
    for m in cfg.mounts:
        if not m.target.startswith("/"):
            problems.append(f"mount target {m.target!r} must be absolute")
        if not os.path.isabs(m.source):
            problems.append(f"mount source {m.source!r} must be absolute")
        if m.beneath is not None and not (m.source + "/").startswith(m.beneath.rstrip("/") + "/"):
            problems.append(f"mount source {m.source!r} is not under {m.beneath!r}")
    unknown = sorted(c for c in cfg.capabilities if c not in CAPABILITIES)
    if unknown:
        problems.append(f"unknown capabilities: {', '.join(unknown)}")
    if cfg.limits.memory is not None and cfg.limits.memory < 6 * 1024 * 1024:
        problems.append(f"memory limit {cfg.limits.memory} bytes is below the 6M minimum")
    if cfg.limits.cpus is not None and cfg.limits.cpus <= 0:
        problems.append("cpus must be positive")
    if cfg.limits.pids is not None and cfg.limits.pids < 1:
        problems.append("pids must be at least 1")
    for sec in cfg.secrets:
        if "/" in sec.target or sec.target in ("", ".", ".."):
            problems.append(f"secret target {sec.target!r} must be a file name")
    if len(cfg.hostname) > 64:
        problems.append("hostname is longer than 64 characters")
    if problems:
        raise InputError(f"invalid container {cfg.name!r}: " + "; ".join(problems))
