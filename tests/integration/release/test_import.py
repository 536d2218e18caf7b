"""`envtool import` of the two public flask + redis shapes, then the stack comes up and counts.
Images are locked on the host (the package mirror and PyPI are reached from here); the stack runs
in a network namespace of its own so its published ports cannot meet anything on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import DATA
from tests.integration.release.hosts import Host

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.mark.parametrize(("example", "compose", "port", "expect"), [
    ("flask-redis", "compose.yaml", 8000, "I have been seen {n} times"),
    ("awesome-flask-redis", "docker-compose.yml", 5000, "viewed {n} time(s)"),
])
def test_imported_compose_stack_comes_up(example, compose, port, expect, tmp_path, store_root, leak_check):
    d = tmp_path / example
    shutil.copytree(DATA / "compose" / example, d)
    host = Host(f"et-imp-{uuid.uuid4().hex[:6]}", Path(store_root))
    name = f"i{uuid.uuid4().hex[:8]}"
    try:
        imported = host.run("import", str(d / compose), "--name", name)
        assert imported.returncode == 0, imported.stderr
        env = {**os.environ, "ENVTOOL_ROOT": store_root}
        locked = subprocess.run([sys.executable, "-m", "envtool", "-C", str(d), "lock"], env=env,
                                capture_output=True, text=True, timeout=900)
        assert locked.returncode == 0, locked.stderr[-3000:]
        up = host.run("-C", str(d), "up", "-d", "--locked")
        assert up.returncode == 0, up.stderr[-3000:]
        seen = []
        deadline = time.monotonic() + 30
        while len(seen) < 2 and time.monotonic() < deadline:
            try:
                seen.append(host.get(port))
            except AssertionError:
                time.sleep(0.3)
        assert [expect.format(n=1) in seen[0], expect.format(n=2) in seen[1]] == [True, True], seen
    finally:
        host.close(name)
