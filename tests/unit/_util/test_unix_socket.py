"""Unix sockets under paths longer than sun_path holds (a project under a long ENVTOOL_ROOT)."""

from __future__ import annotations

import socket
from pathlib import Path

from envtool._util.unix_socket import SUN_PATH_MAX, addressable


def _roundtrip(path: Path) -> bytes:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with srv, addressable(path) as address:
        srv.bind(address)
        srv.listen(1)
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with cli, addressable(path) as again:
            cli.connect(again)
            conn, _ = srv.accept()
            with conn:
                cli.sendall(b"hello")
                return conn.recv(5)


def test_a_short_path_is_used_as_it_is(tmp_path: Path) -> None:
    with addressable(tmp_path / "s.sock") as address:
        assert address == str(tmp_path / "s.sock")
    assert _roundtrip(tmp_path / "s.sock") == b"hello"


def test_a_path_longer_than_sun_path_still_binds_and_connects(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = deep / "control.sock"
    assert len(str(path)) > SUN_PATH_MAX
    assert _roundtrip(path) == b"hello"
    assert path.is_socket()
