"""On-disk state of a project's stack: JSON, written atomically after every change, and the paths
of everything the supervisor owns.  A resource is recorded before it is created, so `down` (or a
new supervisor after a crash) removes exactly what exists."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from envtool._util.atomic import write_atomic
from envtool._util.digest import small_sha256_hex
from envtool._util.record import asdict, dataclass, fields


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def for_project(cls, store_root: Path, project: str) -> Paths:
        return cls(projects_dir(store_root) / project)

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def socket(self) -> Path:
        return self.root / "control.sock"

    @property
    def lock(self) -> Path:
        return self.root / "supervisor.lock"

    @property
    def cli_lock(self) -> Path:
        return self.root / "cli.lock"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, container: str) -> Path:
        return self.logs / f"{container}.log"

    def open_log(self, name: str) -> int:
        """An append-only fd of a container's (or the watcher's) log, created 0600: a log holds
        whatever the service prints, its environment included."""
        return os.open(self.log(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)


class Status(StrEnum):
    """A container's status, as `ps` shows it (a str: JSON and comparisons with text just work)."""
    CREATED = "created"            # planned, never started
    CREATING = "creating"          # forked, setting itself up
    STARTING = "starting"          # running, its healthcheck not yet passed
    RUNNING = "running"            # running, no healthcheck
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    RESTARTING = "restarting"      # exited, its restart policy will start it again
    EXITED = "exited"
    STOPPED = "stopped"            # by stop, down or a recreate
    FAILED = "failed"              # could not be started


RUNNING = frozenset({Status.STARTING, Status.RUNNING, Status.HEALTHY, Status.UNHEALTHY})


@dataclass
class ContainerRecord:
    """One container as state.json records it: what a new supervisor re-adopts and what `ps`,
    `exec` and the watcher read when the supervisor is not asked."""
    spec: dict[str, Any]            # stack.spec.ContainerSpec as JSON
    status: Status = Status.CREATED
    pid: int | None = None
    start_time: int | None = None   # of PID 1, in clock ticks (pid reuse guard)
    hash: str = ""
    image: str = ""
    service: str = ""
    address: str = ""
    restarts: int = 0
    exit_code: int | None = None
    started_wall: float = 0.0
    instance: str = ""              # runtime id (state dir, cgroup); "" = the container's name

    @property
    def runtime_id(self) -> str:
        return self.instance or str(self.spec["name"])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ContainerRecord:
        known = {f.name for f in fields(cls)}
        rec = cls(**{k: v for k, v in d.items() if k in known})
        rec.status = Status(rec.status) if rec.status in Status._value2member_map_ else Status.EXITED
        return rec


def records(data: dict[str, Any]) -> dict[str, ContainerRecord]:
    """The containers of a loaded state document, typed: each replica slot's current instance."""
    return {name: ContainerRecord.from_json(r) for name, r in (data.get("containers") or {}).items()}


def retiring(data: dict[str, Any]) -> dict[str, ContainerRecord]:
    """Replaced instances still serving (or draining) while their successors take over."""
    return {name: ContainerRecord.from_json(r) for name, r in (data.get("retiring") or {}).items()}


def load(paths: Paths) -> dict[str, Any]:
    try:
        return json.loads(paths.state.read_text())
    except (OSError, ValueError):
        return {}


def save(paths: Paths, state: dict[str, Any]) -> None:
    # 0600: it holds every service's environment (the store's root is 0700 as well)
    write_atomic(paths.state, json.dumps(state, indent=1, sort_keys=True), mode=0o600)


def proc_start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks (field 22 of /proc/PID/stat): pid + start time
    identify a process across pid reuse."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return int(data.rsplit(")", 1)[1].split()[19])


def alive(pid: int | None, start_time: int | None) -> bool:
    return bool(pid) and start_time is not None and proc_start_time(pid) == start_time  # type: ignore[arg-type]


def projects_dir(store_root: Path) -> Path:
    """Where each project's state, control socket and logs live: in the store, or, for an ordinary
    user (rootless), under the run dir ($XDG_RUNTIME_DIR/envtool), one directory per store."""
    from envtool.runtime import rootless

    if not rootless.unprivileged():
        return store_root / "projects"
    tag = small_sha256_hex(os.path.realpath(store_root).encode())[:8]
    return rootless.run_dir() / "stores" / tag / "projects"


def projects(store_root: Path) -> list[str]:
    d = projects_dir(store_root)
    return sorted(p.name for p in d.iterdir() if (p / "state.json").exists()) if d.is_dir() else []




def host_key(store_root: Path | str, project: str) -> str:
    """What names a project's host resources (cgroup level, bridge, veths, nftables table): the
    project under the default root; under another root (a second envtool "host" on the same machine)
    the project plus a hash of that root, so two roots may run projects of the same name side by side.
    Project names cannot hold a dot, so the two forms never meet."""
    root = os.path.realpath(store_root)
    if root == "/var/lib/envtool":
        return project
    return f"{project}.{small_sha256_hex(root.encode())[:8]}"


def cgroup_parent(store_root: Path | str, project: str) -> str:
    """The cgroup level of a project's containers."""
    return f"envtool/{host_key(store_root, project)}"
