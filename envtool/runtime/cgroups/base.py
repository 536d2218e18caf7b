"""The cgroup interface: create with limits, attach, read OOM kills and memory, remove."""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod

from envtool._util.record import dataclass
from envtool.errors import SyscallError
from envtool.runtime.config import Limits


@dataclass
class Cgroup(ABC):
    name: str                    # relative path, e.g. "envtool/run/run-1a2b"

    @abstractmethod
    def procs_files(self) -> list[str]:
        """cgroup.procs files a process writes "0" to in order to join."""

    def place(self, pid: int) -> None:
        """Move process `pid` (of our pid namespace) into every hierarchy of this cgroup."""
        for procs in self.procs_files():
            try:
                fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, str(pid).encode())
                finally:
                    os.close(fd)
            except OSError as e:
                raise SyscallError("join cgroup", procs, e.errno or 0) from None

    @abstractmethod
    def oom_kills(self) -> int: ...

    @abstractmethod
    def memory_peak(self) -> int | None: ...

    @abstractmethod
    def pids(self) -> list[int]: ...

    @abstractmethod
    def dirs(self) -> list[str]: ...

    def kill_all(self, sig: int = 9) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def remove(self, timeout: float = 2.0) -> None:
        """rmdir the cgroup; processes of a dying pid namespace may take a moment to go."""
        deadline = time.monotonic() + timeout
        for d in self.dirs():
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if time.monotonic() > deadline:
                        raise SyscallError("rmdir cgroup", d, e.errno or 0) from None
                    self.kill_all()
                    time.sleep(0.005)
            _remove_empty_parents(d, self.name)


def _remove_empty_parents(leaf: str, name: str) -> None:
    """Remove envtool's own intermediate levels ("envtool/run") once they are empty."""
    path = leaf
    for _ in range(name.count("/")):
        path = os.path.dirname(path)
        try:
            os.rmdir(path)
        except OSError:
            return


class CgroupManager(ABC):
    version: int
    enforces = True                  # limits apply (NoCgroups: a rootless session without delegation)

    @abstractmethod
    def create(self, name: str, limits: Limits) -> Cgroup: ...

    @abstractmethod
    def open(self, name: str) -> Cgroup: ...


def write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise SyscallError("write", f"{path}={value!r}", e.errno or 0) from None


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def make_dirs(root: str, name: str) -> list[str]:
    """mkdir each level under root; returns the ones created (innermost last)."""
    created = []
    path = root
    for part in name.split("/"):
        path = os.path.join(path, part)
        try:
            os.mkdir(path)
            created.append(path)
        except FileExistsError:
            pass
        except OSError as e:
            raise SyscallError("mkdir cgroup", path, e.errno or 0) from None
    return created
