"""Talking to a project's supervisor: JSON lines over its Unix socket (root only), and starting
one when none runs (a double fork: the supervisor is nobody's child and outlives the CLI)."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from envtool._util.unix_socket import addressable
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


def take_lock(paths: Paths) -> int | None:
    """The project's supervisor lock, or None when another supervisor holds it or the project
    is gone: a supervisor started late (by an `up` racing a `down`) must not bring back the
    directory `down` removed, nor hold a lock file that `down` unlinked."""
    try:
        fd = os.open(paths.lock, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        return None                                         # the project directory went away
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(paths.lock).st_ino:
            raise FileNotFoundError(paths.lock)             # unlinked by the supervisor before us
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def wait_exited(paths: Paths, timeout: float = 5.0) -> None:
    """Wait (up to `timeout`) for the supervisor to let go of its lock: it exits right after
    answering a `down`."""
    deadline = time.monotonic() + timeout
    while running(paths) and time.monotonic() < deadline:
        time.sleep(0.01)


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

    def body() -> None:
        lock = take_lock(paths)      # first: `running()` is true at once and nobody starts a second
        if lock is None:             # supervisor while this one imports; held until this process exits
            return
        from envtool.stack.supervisor import run_daemon

        run_daemon(store_root, project)

    detach(body, paths.supervisor_log)


def detach(body: Callable[[], None], log: Path | None = None) -> None:
    """Run `body` in a double-forked process: nobody's child, in a session of its own, outliving
    the caller, with none of the caller's fds (its locks!) and stdout/stderr going to `log`."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            os.chdir("/")
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))
            devnull = os.open(os.devnull, os.O_RDWR)
            out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640) if log else devnull
            for n, fd in ((0, devnull), (1, out), (2, out)):
                os.dup2(fd, n)
            try:
                body()
            except BaseException:  # noqa: BLE001 - a daemon's last words go to its log
                import traceback

                traceback.print_exc()
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


def request(paths: Paths, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Send one request; yield each event, the last one has "done"."""
    s = _connect(paths)
    with s, s.makefile("rb") as f:
        s.sendall((json.dumps(msg) + "\n").encode())
        for line in f:
            event = json.loads(line)
            yield event
            if event.get("done"):
                return
    raise SupervisorError("the supervisor closed the connection without an answer",
                          hint=f"see {paths.supervisor_log}")


def _connect(paths: Paths, grace: float = 10.0) -> socket.socket:
    """Connect to the supervisor.  One that holds the lock but has not put its socket in place
    yet (it is still importing; a stale socket of one that died may be in its place) is given
    `grace` seconds to do so."""
    deadline = time.monotonic() + grace
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with addressable(paths.socket) as address:
                s.connect(address)
            return s
        except OSError as e:
            s.close()
            if not (e.errno in (errno.ECONNREFUSED, errno.ENOENT) and time.monotonic() < deadline
                    and running(paths)):
                raise SupervisorError(f"cannot reach the supervisor at {paths.socket}: {e.strerror}",
                                      hint="run `envtool up` first") from None
        time.sleep(0.01)


def call(paths: Paths, msg: dict[str, Any]) -> dict[str, Any]:
    events = list(request(paths, msg))
    return events[-1] if events else {}
