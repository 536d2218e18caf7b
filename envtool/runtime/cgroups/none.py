"""No cgroup: a rootless session on a host that delegates no cgroup v2 subtree to the user (a
hybrid or v1 host, or v2 without systemd's user delegation).  Containers run; memory, cpu and pids
limits are not enforced (`up` says so once), OOM kills are not counted, and a container's
processes are ended through its pid namespace (SIGKILL to its PID 1 ends them all) rather than
through a cgroup."""

from __future__ import annotations

from envtool._util.record import dataclass
from envtool.runtime.cgroups.base import Cgroup, CgroupManager
from envtool.runtime.config import Limits


@dataclass
class NoCgroup(Cgroup):
    def procs_files(self) -> list[str]:
        return []

    def oom_kills(self) -> int:
        return 0

    def memory_peak(self) -> int | None:
        return None

    def pids(self) -> list[int]:
        return []

    def dirs(self) -> list[str]:
        return []


class NoCgroups(CgroupManager):
    version = 0
    enforces = False

    def __init__(self, why: str) -> None:
        self.why = why

    def create(self, name: str, limits: Limits) -> NoCgroup:
        return NoCgroup(name)

    def open(self, name: str) -> NoCgroup:
        return NoCgroup(name)
