"""Talking to a project's supervisor: JSON lines over its Unix socket (root only), and starting
one when none runs (a double fork: the supervisor is nobody's child and outlives the CLI)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

from envtool.errors import RuntimeFailure
from envtool.stack.state import Paths


class SupervisorError(RuntimeFailure):
    code = "supervisor"


def running(paths: Paths) -> bool:
    """True when a supervisor holds the project's lock."""
    try:
        fd = os.open(paths.lock, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def ensure(store_root: str, project: str, paths: Paths, timeout: float = 10.0) -> None:
    """Start the supervisor unless one runs, and wait until it answers."""
    if not (running(paths) and paths.socket.exists()):
        start(store_root, project, paths)
    wait(project, paths, timeout)


def start(store_root: str, project: str, paths: Paths) -> None:
    """Launch a supervisor in the background without waiting for it (a second one exits at once:
    the lock decides)."""
    if running(paths):
        return
    paths.root.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            _daemon_body(store_root, project, paths)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def wait(project: str, paths: Paths, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if paths.socket.exists() and running(paths):
            return
        if time.monotonic() > deadline - timeout + 2 and not running(paths):
            break                                # it took no lock within 2 s: it died
        time.sleep(0.01)
    raise SupervisorError(f"the supervisor of {project!r} did not start: {_last_line(paths.supervisor_log)}",
                          hint=f"see {paths.supervisor_log}")


def _last_line(path: Any) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no log"


def _daemon_body(store_root: str, project: str, paths: Paths) -> None:
    os.chdir("/")
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))    # nothing of the CLI's (its locks!) outlives it
    devnull = os.open(os.devnull, os.O_RDONLY)
    log = os.open(paths.supervisor_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(devnull)
    os.close(log)
    from envtool.stack.supervisor import run_daemon

    try:
        run_daemon(store_root, project)
    except BaseException:  # noqa: BLE001 - the daemon's last words go to its log
        import traceback

        traceback.print_exc()


def request(paths: Paths, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Send one request; yield each event, the last one has "done"."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(paths.socket))
    except OSError as e:
        s.close()
        raise SupervisorError(f"cannot reach the supervisor at {paths.socket}: {e.strerror}",
                              hint="run `envtool up` first") from None
    with s, s.makefile("rb") as f:
        s.sendall((json.dumps(msg) + "\n").encode())
        for line in f:
            event = json.loads(line)
            yield event
            if event.get("done"):
                return
    raise SupervisorError("the supervisor closed the connection without an answer",
                          hint=f"see {paths.supervisor_log}")


def call(paths: Paths, msg: dict[str, Any]) -> dict[str, Any]:
    events = list(request(paths, msg))
    return events[-1] if events else {}
