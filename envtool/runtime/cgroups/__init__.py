"""Cgroups: one interface (base.py), a unified (v2) and a per-controller (v1) writer."""

from __future__ import annotations

import os

from envtool.runtime.cgroups.base import Cgroup, CgroupManager
from envtool.runtime.cgroups.none import NoCgroups
from envtool.runtime.cgroups.v1 import V1Manager
from envtool.runtime.cgroups.v2 import V2Manager

__all__ = ["Cgroup", "CgroupManager", "NoCgroups", "delegated", "detect"]


def detect(mounts_file: str = "/proc/self/mounts", force: str | None = None) -> CgroupManager:
    """cgroup v2 when it has the memory controller (pure v2 hosts), else v1 (hybrid hosts).
    ENVTOOL_CGROUP=v1|v2 (or `force`) overrides the choice.  In a rootless session: the subtree
    systemd delegates to the user (cgroup v2), else none (limits not enforced)."""
    from envtool.runtime import rootless

    if rootless.active():
        return delegated(mounts_file)
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


def delegated(mounts_file: str = "/proc/self/mounts", self_cgroup: str = "/proc/self/cgroup",
              owner: int | None = None) -> CgroupManager:
    """A rootless session's cgroups: under the topmost ancestor of our own cgroup v2 that we own,
    may write and that offers the memory controller (systemd's user@UID.service), else none."""
    v2_root = None
    with open(mounts_file) as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                v2_root = parts[1]
                break
    if v2_root is None:
        return NoCgroups("this host has no cgroup v2 hierarchy to delegate (cgroup v1 needs root)")
    try:
        with open(self_cgroup) as f:
            rel = next((ln.split(":", 2)[2].strip() for ln in f if ln.startswith("0::")), None)
    except OSError:
        rel = None
    if rel is None:
        return NoCgroups("this process is in no cgroup v2 group")
    parts = [p for p in rel.strip("/").split("/") if p]
    for depth in range(1, len(parts) + 1):            # the topmost one we may write: user@UID.service
        path = os.path.join(v2_root, *parts[:depth])
        try:
            with open(os.path.join(path, "cgroup.controllers")) as f:
                controllers = f.read().split()
            st = os.stat(path)
        except OSError:
            continue
        if "memory" in controllers and (owner is None or st.st_uid == owner) \
                and os.access(os.path.join(path, "cgroup.subtree_control"), os.W_OK):
            return V2Manager(path)
    return NoCgroups("no cgroup v2 subtree with the memory controller is delegated to you "
                     "(systemd does that for user sessions: user@UID.service)")
