"""The supervisor lock and the client's connect: what keeps two supervisors from running one project and
a client from being refused by a supervisor that is still putting its socket in place."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from envtool.stack import control
from envtool.stack.state import Paths


def test_the_lock_is_taken_once_and_names_its_holder(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    fd = control.take_lock(paths)
    assert fd is not None and paths.lock.read_text() == str(os.getpid())
    try:
        assert control.take_lock(paths) is None               # a second supervisor exits at once
        assert control.running(paths)
    finally:
        os.close(fd)
    assert not control.running(paths)


def test_a_late_supervisor_does_not_bring_back_a_removed_project(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "gone")
    assert control.take_lock(paths) is None
    assert not paths.root.exists()


def _listening(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(1)
    return s


def test_connect_waits_for_a_lock_holder_to_put_its_socket_in_place(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    fd = control.take_lock(paths)
    assert fd is not None
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(paths.socket))                              # a socket file nobody listens on
    stale.close()
    staged = tmp_path / ".staged"
    server = _listening(staged)

    renamed = threading.Event()

    def replace() -> None:
        time.sleep(0.3)
        renamed.set()
        os.rename(staged, paths.socket)

    t = threading.Thread(target=replace)
    t.start()
    try:
        client = control._connect(paths)                      # refused by the stale file, it waits...
        server.settimeout(5)
        conn, _ = server.accept()                              # ...and reaches the socket put in place
        assert renamed.is_set()
        conn.close()
        client.close()
    finally:
        t.join()
        server.close()
        os.close(fd)


def test_connect_fails_at_once_when_no_supervisor_holds_the_lock(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(paths.socket))
    stale.close()
    started = time.monotonic()
    with pytest.raises(control.SupervisorError, match="cannot reach the supervisor"):
        control._connect(paths, grace=60.0)
    assert time.monotonic() - started < 30.0          # the grace is for a lock holder only: not waited
