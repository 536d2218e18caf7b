import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

PY_RECIPE = '[images.py]\nfrom = "debian:bookworm"\npackages = ["python3"]\n'


class Stack:
    def __init__(self, root: Path, env: dict[str, str], name: str) -> None:
        self.dir, self.env, self.name = root, env, name

    def write(self, body: str, recipe: str = PY_RECIPE) -> None:
        (self.dir / "envtool.toml").write_text(f'[project]\nname = "{self.name}"\n{recipe}\n{body}')

    def cli(self, *args: str, timeout: float = 180, check: bool = False) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "envtool", "-C", str(self.dir), *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, proc.stderr + proc.stdout
        return proc

    def ps(self) -> dict[str, dict]:
        return {r["name"]: r for r in json.loads(self.cli("ps", "--json", check=True).stdout)}

    def supervisor_log(self, lines: int = 30) -> str:
        """The tail of the supervisor's log, for a failing assertion's message."""
        try:
            text = (Path(self.env["ENVTOOL_ROOT"]) / "projects" / self.name / "supervisor.log").read_text()
        except OSError:
            return "(no supervisor log)"
        return "\n".join(text.splitlines()[-lines:])

    def supervisor_pid(self) -> int:
        return int((Path(self.env["ENVTOOL_ROOT"]) / "projects" / self.name / "supervisor.lock").read_text())


@pytest.fixture
def stack(tmp_path, envtool_env, py_image, leak_check):
    """A throwaway project (unique name) that is always brought down afterwards."""
    s = Stack(tmp_path, envtool_env, f"t{uuid.uuid4().hex[:8]}")
    yield s
    s.cli("down", "--volumes", timeout=120)


def host_links() -> set[str]:
    return {line.split(":")[1].strip().split("@")[0] for line in
            subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()}


def envtool_tables() -> list[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "envtool-" in line]


def http_get(port: int, path: str = "/", timeout: float = 3.0) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read().decode()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


os.environ.setdefault("NO_COLOR", "1")
