"""The supervisor's side of the control socket (stack/control.py is the client's).

One JSON line in per connection, JSON lines out (`{"event": ...}` while working, then one with
`"done": true`).  Root only: the socket is created 0600 and the peer's uid is checked again with
SO_PEERCRED.  The socket appears in place already listening (bound under a staged name, renamed),
so a client never finds it refusing.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envtool._util.unix_socket import addressable
from envtool.errors import EnvtoolError
from envtool.stack.loop import EventLoop

Handler = Callable[[socket.socket, dict[str, Any]], None]


class ControlServer:
    def __init__(self, path: Path, loop: EventLoop, handle: Handler) -> None:
        self.path, self.loop, self.handle = path, loop, handle

    def listen(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        staged = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        staged.unlink(missing_ok=True)          # left by a killed supervisor of the same pid
        old = os.umask(0o077)                   # root only: the socket controls containers
        try:
            with addressable(staged) as address:
                srv.bind(address)
        finally:
            os.umask(old)
        srv.listen(16)
        os.rename(staged, self.path)            # it appears listening: a client never sees it refuse
        srv.setblocking(False)
        self.loop.watch(srv, self._accept)

    def _accept(self, srv: socket.socket) -> None:
        try:
            conn, _ = srv.accept()
        except BlockingIOError:
            return
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        if int.from_bytes(creds[4:8], "little") != 0:
            conn.close()
            return
        conn.setblocking(True)
        conn.settimeout(5)
        try:
            request = json.loads(conn.makefile("rb").readline())
        except (OSError, ValueError):
            conn.close()
            return
        conn.settimeout(None)
        try:
            self.handle(conn, request)
        except EnvtoolError as e:
            reply(conn, {"ok": False, "error": e.to_dict()})
            close(conn)


def send(conn: socket.socket | None, msg: dict[str, Any]) -> None:
    if conn is None:
        return
    try:
        conn.sendall((json.dumps(msg) + "\n").encode())
    except OSError:
        pass


def reply(conn: socket.socket | None, msg: dict[str, Any]) -> None:
    send(conn, {"done": True, **msg})


def close(conn: socket.socket | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except OSError:
            pass
