"""Waiting for fds (pipes, pidfds, a pty): the one place that does it.

poll(), not select(): select() cannot wait on an fd numbered 1024 or more, and a supervisor with a
hundred containers has fds past that.
"""

from __future__ import annotations

import select
from collections.abc import Iterable


def readable(fds: Iterable[int], timeout: float | None = None) -> list[int]:
    """The fds that are readable, at EOF or hung up (a pidfd: its process exited) within `timeout`
    seconds (None: wait for one); [] when none is."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    ms = None if timeout is None else max(0.0, timeout) * 1000
    return [fd for fd, _ in poller.poll(ms)]
