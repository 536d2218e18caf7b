"""The desired stack as plain, serialisable data: one ContainerSpec per replica.

Built in the CLI process (which loads envtool.toml and builds images) and sent to the supervisor,
which never reads envtool.toml itself.  `hash` covers everything that requires recreating the
container when it changes.
"""

from __future__ import annotations

import json
from typing import Any

from envtool._util.digest import canonical_json, sha256_bytes
from envtool._util.record import asdict, dataclass, field


@dataclass(frozen=True)
class Health:
    command: tuple[str, ...]
    interval: float
    timeout: float
    retries: int
    start_period: float


@dataclass(frozen=True)
class Port:
    host_ip: str | None
    published: int | None
    target: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False
    beneath: str | None = None       # the directory the source must stay under (runtime.config)


@dataclass(frozen=True)
class UpdatePolicy:
    """How the container is replaced; not part of its hash (a changed policy recreates nothing)."""
    order: str = "start-first"             # start-first | stop-first
    parallelism: int = 1
    monitor: float = 60.0
    failure_action: str = "rollback"       # rollback | pause
    why: str = ""                          # why stop-first, when envtool chose it


@dataclass(frozen=True)
class SecretMount:
    """A secret as /run/secrets/<target>: where its value is read on this host, never the value."""
    name: str
    target: str
    source: str                       # "file:/abs/path" or "env:VARIABLE"
    path: str = ""                    # the file read at every start (env: written by up into the store)
    uid: int | None = None            # None: the container's user
    gid: int | None = None
    mode: int = 0o400


@dataclass(frozen=True)
class ContainerSpec:
    name: str                        # <project>-<service>-<replica>
    service: str
    replica: int
    image: str                       # manifest digest
    layers: tuple[str, ...]
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    workdir: str
    user: str
    capabilities: tuple[str, ...]
    read_only: bool = False
    mounts: tuple[Mount, ...] = ()
    memory: int | None = None
    cpus: float | None = None
    pids: int | None = None
    init: bool = False
    stop_signal: str = "SIGTERM"
    stop_grace: float = 10.0
    restart: str = "no"
    health: Health | None = None
    depends_on: tuple[tuple[str, str], ...] = ()
    ports: tuple[Port, ...] = ()
    hostname: str = ""
    update: UpdatePolicy = UpdatePolicy()
    aliases: tuple[str, ...] = ()        # more DNS names of the service (they change no container)
    secrets: tuple[SecretMount, ...] = ()
    networks: tuple[str, ...] = ()          # () = only "default"; firewall and DNS only, like aliases

    @property
    def hash(self) -> str:
        d = to_json(self)
        del d["update"]
        del d["aliases"]
        del d["networks"]
        if not d["secrets"]:
            del d["secrets"]
        return sha256_bytes(canonical_json(d))[7:23]


@dataclass
class StackSpec:
    project: str
    directory: str
    subnet: str | None
    containers: list[ContainerSpec] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    env: str | None = None
    release: str | None = None                       # the release id, when the stack is one
    lock: str | None = None                          # digest of its envtool.lock
    images: dict[str, str] = field(default_factory=dict)   # image reference → manifest digest
    environments: list[str] = field(default_factory=list)  # the environments the release holds

    def services(self) -> dict[str, list[ContainerSpec]]:
        out: dict[str, list[ContainerSpec]] = {}
        for c in self.containers:
            out.setdefault(c.service, []).append(c)
        return out

    def dependencies(self) -> dict[str, dict[str, str]]:
        deps: dict[str, dict[str, str]] = {}
        for c in self.containers:
            deps.setdefault(c.service, dict(c.depends_on))
        return deps


def to_json(value: Any) -> Any:
    return json.loads(json.dumps(asdict(value)))


def container_from_json(d: dict[str, Any]) -> ContainerSpec:
    d = dict(d)
    d["layers"] = tuple(d["layers"])
    d["argv"] = tuple(d["argv"])
    d["env"] = tuple(tuple(x) for x in d["env"])
    d["capabilities"] = tuple(d["capabilities"])
    d["mounts"] = tuple(Mount(**m) for m in d["mounts"])
    d["health"] = Health(**{**d["health"], "command": tuple(d["health"]["command"])}) if d.get("health") else None
    d["depends_on"] = tuple(tuple(x) for x in d["depends_on"])
    d["ports"] = tuple(Port(**p) for p in d["ports"])
    d["update"] = UpdatePolicy(**d["update"]) if d.get("update") else UpdatePolicy()
    d["aliases"] = tuple(d.get("aliases") or ())
    d["networks"] = tuple(d.get("networks") or ())
    d["secrets"] = tuple(SecretMount(**m) for m in d.get("secrets") or ())
    return ContainerSpec(**d)


def stack_to_json(s: StackSpec) -> dict[str, Any]:
    return {"project": s.project, "directory": s.directory, "subnet": s.subnet, "env": s.env,
            "volumes": s.volumes, "containers": [to_json(c) for c in s.containers], "release": s.release,
            "lock": s.lock, "images": s.images, "environments": s.environments}


def stack_from_json(d: dict[str, Any]) -> StackSpec:
    return StackSpec(d["project"], d["directory"], d.get("subnet"),
                     [container_from_json(c) for c in d["containers"]], list(d.get("volumes", [])), d.get("env"),
                     d.get("release"), d.get("lock"), dict(d.get("images") or {}),
                     list(d.get("environments") or []))
