"""Network namespaces made by the caller for its next container (no named netns, no mounts).

`new_netns(inside)` unshares a fresh network namespace, runs `inside()` there (e.g. to open a
netlink socket bound to it), keeps an fd to the namespace and returns to the original one.  The
container joins it through that fd; the namespace, and every veth in it, vanish with the last
process and fd that hold it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from envtool.runtime.syscalls import CLONE_NEWNET, LinuxSyscalls, Syscalls

T = TypeVar("T")


def new_netns(inside: Callable[[], T], sc: Syscalls | None = None) -> tuple[int, T]:
    sc = sc or LinuxSyscalls()
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.unshare(CLONE_NEWNET)
        try:
            result = inside()
            fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            sc.setns(own, CLONE_NEWNET)
        return fd, result
    finally:
        os.close(own)


def fd_path(fd: int) -> str:
    """A path a forked child can open to reach the namespace behind an inherited fd."""
    return f"/proc/{os.getpid()}/fd/{fd}"
