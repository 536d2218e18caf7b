"""cgroup v1 writer: one directory per controller (memory, pids, cpu, devices), same interface as v2."""

from __future__ import annotations

import os

from envtool._util.record import dataclass, field
from envtool.runtime.cgroups.base import Cgroup, CgroupManager, make_dirs, read, write
from envtool.runtime.config import Limits

CPU_PERIOD = 100_000
USED = ("memory", "pids", "cpu", "devices")
# Docker's default device allow-list: any node may be made (CAP_MKNOD), only these opened
DEVICE_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm")


@dataclass
class V1Cgroup(Cgroup):
    mounts: dict[str, str] = field(default_factory=dict)    # controller -> mountpoint

    def _dir(self, controller: str) -> str | None:
        mnt = self.mounts.get(controller)
        return os.path.join(mnt, self.name) if mnt else None

    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.dirs()]

    def oom_kills(self) -> int:
        d = self._dir("memory")
        if not d:
            return 0
        for line in read(os.path.join(d, "memory.oom_control")).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def memory_peak(self) -> int | None:
        d = self._dir("memory")
        text = read(os.path.join(d, "memory.max_usage_in_bytes")).strip() if d else ""
        return int(text) if text.isdigit() else None

    def pids(self) -> list[int]:
        d = self._dir("pids") or self._dir("memory")
        return [int(p) for p in read(os.path.join(d, "cgroup.procs")).split()] if d else []

    def dirs(self) -> list[str]:
        seen: list[str] = []
        for c in USED:
            d = self._dir(c)
            if d and d not in seen:
                seen.append(d)
        return seen


class V1Manager(CgroupManager):
    version = 1

    def __init__(self, mounts: dict[str, str]) -> None:
        self.mounts = {c: m for c, m in mounts.items() if c in USED}

    def create(self, name: str, limits: Limits) -> V1Cgroup:
        cg = V1Cgroup(name, self.mounts)
        for mnt in dict.fromkeys(self.mounts.values()):
            make_dirs(mnt, name)
        mem = cg._dir("memory")
        if mem and limits.memory is not None:
            write(os.path.join(mem, "memory.limit_in_bytes"), str(limits.memory))
            memsw = os.path.join(mem, "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):      # no swap beyond the limit, as on v2
                write(memsw, str(limits.memory))
        pids = cg._dir("pids")
        if pids and limits.pids is not None:
            write(os.path.join(pids, "pids.max"), str(limits.pids))
        devices = cg._dir("devices")
        if devices:                        # before anything joins: deny all, then the allow-list
            write(os.path.join(devices, "devices.deny"), "a")
            for rule in DEVICE_RULES:
                write(os.path.join(devices, "devices.allow"), rule)
        cpu = cg._dir("cpu")
        if cpu and limits.cpus is not None:
            write(os.path.join(cpu, "cpu.cfs_period_us"), str(CPU_PERIOD))
            write(os.path.join(cpu, "cpu.cfs_quota_us"), str(int(limits.cpus * CPU_PERIOD)))
        return cg

    def open(self, name: str) -> V1Cgroup:
        return V1Cgroup(name, self.mounts)
