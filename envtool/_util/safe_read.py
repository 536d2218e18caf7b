"""Read a small text file that someone else controls (an image's /etc/passwd, a container's files)
without letting it hang or flood us: a FIFO, a device or a socket at that name would block an
ordinary open() or read() forever, and /dev/zero would never end."""

from __future__ import annotations

import os
import stat

LIMIT = 4 << 20          # /etc/passwd and /etc/group of any real image are far below this


class NotARegularFile(OSError):
    pass


def read_regular(path: str, *, dir_fd: int | None = None, limit: int = LIMIT, flags: int = 0) -> str:
    """The text of a regular file; a FIFO, socket or device raises NotARegularFile (never blocks),
    a file larger than `limit` is read only up to it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | flags, dir_fd=dir_fd)
    return read_regular_fd(fd, path, limit)


def read_regular_fd(fd: int, name: str, limit: int = LIMIT) -> str:
    """As read_regular, for an fd opened O_NONBLOCK by the caller (openat2); closes it."""
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(0, f"{_kind(mode)}, not a regular file", name)
        chunks, size = [], 0
        while size < limit:
            chunk = os.read(fd, min(1 << 16, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a file"
