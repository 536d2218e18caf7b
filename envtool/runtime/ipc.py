"""Typed messages from the container child to its parent, one JSON line over a CLOEXEC pipe.

A successful exec closes the pipe with nothing written; a failure writes ChildFailed and exits.
"""

from __future__ import annotations

import errno
import json
import os
import time

from envtool._util.record import asdict, dataclass
from envtool._util.wait import readable
from envtool.errors import CommandNotExecutable, CommandNotFound, ContainerError, SyscallError


@dataclass(frozen=True)
class ChildFailed:
    step: str
    message: str
    errno: int = 0
    op: str = ""
    target: str = ""

    @classmethod
    def of(cls, step: str, e: BaseException) -> ChildFailed:
        if isinstance(e, SyscallError):
            return cls(step, str(e), e.errno, e.op, e.target)
        if isinstance(e, OSError):
            return cls(step, f"{(e.strerror or str(e)).lower()}" + (f": {e.filename}" if e.filename else ""),
                       e.errno or 0)
        return cls(step, str(e))

    def to_error(self, container: str) -> ContainerError:
        hint = HINTS.get(self.step)
        if self.step == "rootfs":
            hint = (ROOTFS_HINTS.get(self.errno) if "overlay" in self.message
                    else "a path the container needs is a broken, looping or non-directory symlink in the image"
                    if self.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT) else None)
        cls = ContainerError
        if self.step == "exec" and self.errno == errno.ENOENT:
            cls = CommandNotFound
        elif self.step == "exec" and self.errno == errno.EACCES:
            cls = CommandNotExecutable
        return cls(f"start container {container}: {self.step}: {self.message}", hint=hint)


HINTS = {
    "exec": "check the command and that it exists in the image",
    "user": "the user must exist in the image's /etc/passwd, or be given as uid:gid",
}


ROOTFS_HINTS = {
    errno.ENODEV: "overlayfs is not available: modprobe overlay",
    errno.EINVAL: "the store's filesystem cannot hold overlayfs upper dirs; set ENVTOOL_ROOT to one that can "
                  "(ext4, xfs, btrfs)",
}


def send(fd: int, msg: ChildFailed) -> None:
    data = (json.dumps(asdict(msg)) + "\n").encode()
    try:
        os.write(fd, data)
    except OSError:
        pass


SETUP_TIMEOUT = 20.0      # a child's setup takes milliseconds; this bounds what a hostile image can make it


def receive(fd: int, timeout: float = SETUP_TIMEOUT) -> ChildFailed | None:
    """The child's report, or None once it exec'd (EOF).  A child that neither reports nor execs
    within `timeout` (something in the image made it block) is reported as failed: the caller
    kills it; a single-threaded supervisor must never wait for ever."""
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not readable([fd], left):
            return ChildFailed("setup", f"did not finish setting up within {timeout:g} s", errno.ETIMEDOUT)
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        return None
    return ChildFailed(**json.loads(data.decode().splitlines()[0]))
