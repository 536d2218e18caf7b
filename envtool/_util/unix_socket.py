"""Unix socket paths of any length: sun_path holds 107 bytes, a project under a long root needs more."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SUN_PATH_MAX = 107


@contextmanager
def addressable(path: Path) -> Iterator[str]:
    """An address bind() and connect() accept for `path`: the path itself when it fits, else the
    same file reached through an O_PATH fd of its directory (/proc/self/fd/N/name)."""
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)
