"""The detached watcher of a stack (`up -d --watch`): its pid file and its log, kept beside the
stack's own state (stack/state.Paths), so `down` can stop it and `logs` can show it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from envtool.stack.state import Paths, alive, proc_start_time


def log_of(paths: Paths) -> tuple[str, Path]:
    """The watcher's entry in the stack's log stream: (name, path)."""
    name = f"{paths.root.name}-watch"
    return name, paths.log(name)


def pid_file(paths: Paths) -> Path:
    return paths.root / "watch.pid"


def record(paths: Paths) -> None:
    """Called by the watcher once it watches: its pid and start time (a pid-reuse guard)."""
    f = pid_file(paths)
    if not f.exists():
        f.write_text(f"{os.getpid()} {proc_start_time(os.getpid())}")


def stop(paths: Paths) -> None:
    """SIGTERM to the project's watcher, if one runs; waits up to a second for it to go."""
    f = pid_file(paths)
    try:
        pid, start = (int(x) for x in f.read_text().split())
    except (OSError, ValueError):
        return
    if alive(pid, start):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not alive(pid, start):
                break
            time.sleep(0.01)
    f.unlink(missing_ok=True)
