"""A small single-threaded event loop: readable fds (sockets, pidfds), timers and signals.

Everything the supervisor does happens in a callback of this loop, so no two things ever run at
once and no lock is needed.  A callback (or timer) that raises does not stop the loop: `run` hands
the error to `on_error` and goes on.
"""

from __future__ import annotations

import heapq
import itertools
import os
import selectors
import signal
import time
from collections.abc import Callable
from typing import Any


class EventLoop:
    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.stopping = False

    def watch(self, fileobj: Any, callback: Callable[[Any], None]) -> None:
        """Call callback(fileobj) whenever it is readable (a pidfd: when the process exited)."""
        self.sel.register(fileobj, selectors.EVENT_READ, callback)

    def unwatch(self, fileobj: Any) -> None:
        self.sel.unregister(fileobj)

    def at(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self._seq), fn))

    def every(self, period: float, fn: Callable[[], None]) -> None:
        def tick() -> None:
            fn()
            self.at(period, tick)
        self.at(period, tick)

    def on_signals(self, signals: tuple[int, ...], callback: Callable[[], None]) -> None:
        """The signals stop interrupting anything: they wake the loop, which calls `callback`."""
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        for s in signals:
            signal.signal(s, lambda n, f: None)

        def woken(fd: int) -> None:
            try:
                os.read(fd, 64)
            except BlockingIOError:
                return
            callback()
        self.watch(wake_r, woken)

    def stop(self) -> None:
        self.stopping = True

    def run(self, on_error: Callable[[Exception], None]) -> None:
        while not self.stopping:
            timeout = max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else None
            for key, _ in self.sel.select(timeout):
                try:
                    key.data(key.fileobj)
                except Exception as e:  # noqa: BLE001 - one failed event must not take the stack down
                    on_error(e)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, fn = heapq.heappop(self.timers)
                try:
                    fn()
                except Exception as e:  # noqa: BLE001 - nor one failed timer
                    on_error(e)
