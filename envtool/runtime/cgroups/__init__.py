"""Cgroups: one interface (base.py), a unified (v2) and a per-controller (v1) writer."""

from __future__ import annotations

import os

from envtool.runtime.cgroups.base import Cgroup, CgroupManager
from envtool.runtime.cgroups.v1 import V1Manager
from envtool.runtime.cgroups.v2 import V2Manager

__all__ = ["Cgroup", "CgroupManager", "detect"]


def detect(mounts_file: str = "/proc/self/mounts", force: str | None = None) -> CgroupManager:
    """cgroup v2 when it has the memory controller (pure v2 hosts), else v1 (hybrid hosts).
    ENVTOOL_CGROUP=v1|v2 (or `force`) overrides the choice."""
    force = force or os.environ.get("ENVTOOL_CGROUP")
    v2_root, v1 = None, {}
    with open(mounts_file) as f:
        for line in f:
            _, mnt, fstype, opts, *_ = line.split()
            if fstype == "cgroup2" and v2_root is None:
                v2_root = mnt
            elif fstype == "cgroup":
                for opt in opts.split(","):
                    if opt in ("memory", "pids", "cpu", "cpuacct", "freezer", "devices"):
                        v1[opt] = mnt
    if force == "v2" and v2_root:
        return V2Manager(v2_root)
    if force == "v1" and v1:
        return V1Manager(v1)
    if force not in (None, "", "v1", "v2"):
        from envtool.errors import HostError

        raise HostError(f"ENVTOOL_CGROUP={force!r}: use v1 or v2")
    if v2_root:
        try:
            with open(os.path.join(v2_root, "cgroup.controllers")) as f:
                if "memory" in f.read().split() or not v1:
                    return V2Manager(v2_root)
        except OSError:
            pass
    if v1:
        return V1Manager(v1)
    if v2_root:
        return V2Manager(v2_root)
    from envtool.errors import HostError

    raise HostError("no cgroup filesystem is mounted", hint="mount cgroup2 on /sys/fs/cgroup")
