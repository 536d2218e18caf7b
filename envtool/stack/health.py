"""Healthchecks: the state machine (pure: starting → healthy | unhealthy, Docker's rules) and the
prober that runs a check's command inside its container.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from envtool._util.record import dataclass
from envtool.runtime import enter
from envtool.stack.loop import EventLoop

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"


@dataclass
class HealthState:
    retries: int
    start_period: float
    status: str = STARTING
    failures: int = 0
    last_output: str = ""

    def record(self, ok: bool, since_start: float, output: str = "") -> str:
        self.last_output = output
        if ok:
            self.status, self.failures = HEALTHY, 0
        elif since_start < self.start_period and self.status == STARTING:
            pass                       # failures during the start period do not count
        else:
            self.failures += 1
            if self.failures >= self.retries:
                self.status = UNHEALTHY
        return self.status


@dataclass
class _Probe:
    pid: int                 # the entering process (runtime/enter.py's middle process)
    pidfd: int
    out_fd: int              # its stdout and stderr


class Prober:
    """Runs healthcheck commands inside containers, at most one at a time per container, each
    killed at its timeout, and hands (container, ok, output) to `on_result`."""

    def __init__(self, loop: EventLoop, on_result: Callable[[str, bool, str], None]) -> None:
        self.loop, self.on_result = loop, on_result
        self.running: dict[str, _Probe] = {}

    def busy(self, name: str) -> bool:
        return name in self.running

    def start(self, name: str, spec: enter.EnterSpec, timeout: float) -> None:
        r, w = os.pipe2(os.O_CLOEXEC)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            pid, report = enter.spawn(spec, stdio=(devnull, w, w))
        except OSError as e:
            os.close(r)
            self.on_result(name, False, f"cannot start healthcheck: {e}")
            return
        finally:
            os.close(w)
            os.close(devnull)
        os.close(report)                    # its failure shows as a failed check: exit 127
        probe = _Probe(pid, os.pidfd_open(pid), r)
        os.set_blocking(r, False)
        self.running[name] = probe
        self.loop.watch(probe.pidfd, lambda fd: self._done(name, probe, timed_out=False))
        self.loop.at(timeout, lambda: self._timeout(name, probe))

    def _timeout(self, name: str, probe: _Probe) -> None:
        if self.running.get(name) is probe:
            try:
                os.kill(probe.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._done(name, probe, timed_out=True)

    def _done(self, name: str, probe: _Probe, timed_out: bool) -> None:
        if self.running.get(name) is not probe:
            return
        del self.running[name]
        self.loop.unwatch(probe.pidfd)
        os.close(probe.pidfd)
        try:
            _, status = os.waitpid(probe.pid, 0)
        except ChildProcessError:
            status = 1 << 8
        try:
            output = os.read(probe.out_fd, 4096).decode("utf-8", "replace")
        except OSError:
            output = ""
        os.close(probe.out_fd)
        ok = not timed_out and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        self.on_result(name, ok, "timed out" if timed_out else output)

    def cancel(self, name: str) -> None:
        probe = self.running.pop(name, None)
        if probe is None:
            return
        try:
            os.kill(probe.pid, signal.SIGKILL)
            os.waitpid(probe.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.loop.unwatch(probe.pidfd)
        os.close(probe.pidfd)
        os.close(probe.out_fd)
