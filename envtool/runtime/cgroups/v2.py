"""cgroup v2 (unified hierarchy) writer over a root path (a tmpdir in unit tests)."""

from __future__ import annotations

import os

from envtool._util.record import dataclass
from envtool.runtime.cgroups.base import Cgroup, CgroupManager, make_dirs, read, write
from envtool.runtime.config import Limits

CPU_PERIOD = 100_000


@dataclass
class V2Cgroup(Cgroup):
    root: str = "/sys/fs/cgroup"

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.name)

    def procs_files(self) -> list[str]:
        return [os.path.join(self.path, "cgroup.procs")]

    def oom_kills(self) -> int:
        for line in read(os.path.join(self.path, "memory.events")).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def memory_peak(self) -> int | None:
        text = read(os.path.join(self.path, "memory.peak")).strip()
        return int(text) if text.isdigit() else None

    def pids(self) -> list[int]:
        return [int(p) for p in read(os.path.join(self.path, "cgroup.procs")).split()]

    def dirs(self) -> list[str]:
        return [self.path]

    def kill_all(self, sig: int = 9) -> None:
        kill = os.path.join(self.path, "cgroup.kill")
        if sig == 9 and os.path.exists(kill):
            try:
                write(kill, "1")
                return
            except OSError:
                pass
        super().kill_all(sig)


class V2Manager(CgroupManager):
    version = 2

    def __init__(self, root: str = "/sys/fs/cgroup") -> None:
        self.root = root

    def create(self, name: str, limits: Limits) -> V2Cgroup:
        available = read(os.path.join(self.root, "cgroup.controllers")).split()
        wanted = [c for c in ("memory", "pids", "cpu") if c in available]
        # controllers must be enabled in every ancestor's subtree_control, top down
        path = self.root
        make_dirs(self.root, name)
        for part in name.split("/"):
            if wanted:
                enabled = read(os.path.join(path, "cgroup.subtree_control")).split()
                missing = [c for c in wanted if c not in enabled]
                if missing:
                    write(os.path.join(path, "cgroup.subtree_control"), " ".join("+" + c for c in missing))
            path = os.path.join(path, part)
        cg = V2Cgroup(name, self.root)
        if limits.memory is not None:
            write(os.path.join(cg.path, "memory.max"), str(limits.memory))
            if os.path.exists(os.path.join(cg.path, "memory.swap.max")):
                write(os.path.join(cg.path, "memory.swap.max"), "0")
        if limits.pids is not None:
            write(os.path.join(cg.path, "pids.max"), str(limits.pids))
        if limits.cpus is not None:
            write(os.path.join(cg.path, "cpu.max"), f"{int(limits.cpus * CPU_PERIOD)} {CPU_PERIOD}")
        return cg

    def open(self, name: str) -> V2Cgroup:
        return V2Cgroup(name, self.root)
