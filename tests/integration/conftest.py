import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "tests" / "probe"

pytestmark = pytest.mark.root


@pytest.fixture
def envtool(envtool_env, leak_check):
    """Run the real CLI as a subprocess: envtool("run", ...) → CompletedProcess."""

    def _run(*args: str, timeout: float = 120, input: str | None = None, cwd: str | None = None):
        return subprocess.run([sys.executable, "-m", "envtool", *args], env=envtool_env, capture_output=True,
                              text=True, timeout=timeout, input=input, cwd=cwd)

    return _run


@pytest.fixture
def probe(envtool, py_image):
    """probe(*checks, opts=[...]) → the JSON the probe printed inside a fresh container."""

    def _probe(*checks: str, opts: tuple[str, ...] = ()):
        proc = envtool("run", "-v", f"{PROBE}:/probe:ro", *opts, py_image, "python3", "/probe/probe.py", *checks)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    return _probe


def host_pids() -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}
