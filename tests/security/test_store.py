"""Hole 5: the store was world-traversable (a setuid binary planted by a container ran as root for
any host user, CVE-2021-41091) and state.json, readable by all, held every service's environment."""

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root



def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    """An ordinary host user: setresuid/setresgid before exec, so no capability survives (setpriv
    --reuid keeps them, and CAP_DAC_OVERRIDE would walk straight into the store)."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, user=65534, group=65534, extra_groups=[])
    except PermissionError as e:              # the exec itself was refused
        return subprocess.CompletedProcess(argv, 126, "", str(e))


def test_other_host_users_cannot_reach_the_store(stack, store_root):
    stack.write("""
[services.app]
image = "py"
command = ["sh", "-c", "cp /usr/bin/id /tmp/suid-id && chmod 4755 /tmp/suid-id && touch /tmp/planted && sleep 600"]
environment = { DB_PASSWORD = "hunter2" }
""")
    stack.cli("up", "-d", check=True)
    name = next(iter(stack.ps()))
    planted = Path(store_root) / "containers" / name / "upper" / "tmp" / "suid-id"
    deadline = time.monotonic() + 20
    while not (planted.parent / "planted").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert planted.stat().st_mode & stat.S_ISUID, "the container did not get to plant its binary"
    run = as_nobody(str(planted))
    assert "euid=0" not in run.stdout and "uid=0" not in run.stdout, run.stdout
    assert run.returncode != 0
    state = Path(store_root) / "projects" / stack.name / "state.json"
    assert "hunter2" in state.read_text()
    leak = as_nobody("cat", str(state))
    assert "hunter2" not in leak.stdout and leak.returncode != 0
    assert stat.S_IMODE(os.stat(store_root).st_mode) == 0o700
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    logs = list((Path(store_root) / "projects" / stack.name / "logs").iterdir())
    assert logs and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in logs)
