"""A second machine on this one: a network namespace with an envtool root of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


class Host:
    """A network namespace + an envtool root: what another machine would be."""

    def __init__(self, name: str, root: Path) -> None:
        self.name, self.root = name, root
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ENVTOOL_ROOT": str(self.root), "NO_COLOR": "1"}
        env.pop("ENVTOOL_PROJECT", None)
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.name}", sys.executable, "-m", "envtool", *args],
                              env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)

    def get(self, port: int) -> str:
        code = f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/', timeout=3).read().decode())"
        proc = subprocess.run(["nsenter", f"--net=/run/netns/{self.name}", sys.executable, "-c", code],
                              capture_output=True, text=True, timeout=20)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def close(self, project: str) -> None:
        self.run("-p", project, "down", "--volumes", timeout=120)
        subprocess.run(["ip", "netns", "del", self.name], check=False)
