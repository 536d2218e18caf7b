"""The supervisor's control socket answers root only: only its owner may open the socket, and even when its
permissions are opened up the supervisor checks the peer's credentials (SO_PEERCRED)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

CLIENT = ("import socket, sys\n"
          "s = socket.socket(socket.AF_UNIX)\n"
          "s.connect(sys.argv[1])\n"
          "try:\n"
          "    s.sendall(b'{\"op\": \"ps\"}\\n')\n"
          "    answer = s.recv(4096)\n"
          "except (BrokenPipeError, ConnectionResetError):\n"   # closed before or after the request came
          "    answer = b''\n"
          "print('answer:', answer)\n")


def _as_nobody(sock: Path) -> subprocess.CompletedProcess[str]:
    def drop() -> None:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)

    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    return subprocess.run([python, "-c", CLIENT, str(sock)], preexec_fn=drop, capture_output=True, text=True,
                          timeout=20, cwd="/")


def test_control_socket_answers_root_only(stack):
    stack.write('[services.s]\nimage = "py"\ncommand = ["sleep", "600"]\ninit = true\n')
    stack.cli("up", "-d", check=True)
    project = Path(stack.env["ENVTOOL_ROOT"]) / "projects" / stack.name
    sock = project / "control.sock"
    assert sock.stat().st_mode & 0o077 == 0                          # owner only
    denied = _as_nobody(sock)
    assert denied.returncode != 0 and "PermissionError" in denied.stderr, denied
    chain = [Path(stack.env["ENVTOOL_ROOT"]), project.parent, project]
    modes = [p.stat().st_mode & 0o777 for p in chain]
    try:
        for p in chain:
            p.chmod(p.stat().st_mode | 0o005)
        sock.chmod(0o666)
        refused = _as_nobody(sock)
        assert "answer: b''" in refused.stdout, refused
        assert '"containers"' not in refused.stdout
    finally:
        sock.chmod(0o600)
        for p, m in zip(chain, modes, strict=True):
            p.chmod(m)
    assert stack.ps()[f"{stack.name}-s-1"]["status"] == "running"        # root still gets answers
