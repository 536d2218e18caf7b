"""Reliability: OOM kills and restart policies, crash-loop back-off, concurrent `up`s, volumes across
supervisor crashes, `kill -9` of the supervisor at random points of `up` and `down`, and many
up/down cycles without a leaked link, rule, mount, cgroup, process or state file."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import envtool_tables, free_port, host_links

pytestmark = pytest.mark.root

HOG = '["python3", "-c", "x = b\'x\' * (256 << 20); print(len(x))"]'


def wait_for(check, timeout: float = 20.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting; last: {value!r}")
        time.sleep(interval)


def test_oom_killed_is_reported_and_restarted_per_policy(stack):
    stack.write(f"""
[services.again]
image = "py"
command = {HOG}
restart = "on-failure"
resources = {{ memory = "48M" }}

[services.once]
image = "py"
command = {HOG}
resources = {{ memory = "48M" }}
""")
    up = stack.cli("up", "-d")          # both die at once: up -d says so, with their last lines
    assert up.returncode == 1 and "exited with code 137 right after it started" in up.stderr, up.stderr
    assert "once | [envtool]" in up.stderr and "was OOM-killed" in up.stderr
    once = wait_for(lambda: (r := stack.ps()[f"{stack.name}-once-1"])["status"] == "exited" and r)
    assert once["oom_killed"] is True and once["exit_code"] == 137 and once["restarts"] == 0
    again = wait_for(lambda: (r := stack.ps()[f"{stack.name}-again-1"])["restarts"] >= 2 and r)
    assert again["oom_killed"] is True
    logs = stack.cli("logs", "once").stdout
    assert "was OOM-killed" in logs


def test_a_crash_loop_backs_off(stack):
    stack.write("""
[services.crash]
image = "py"
command = ["sh", "-c", "exit 3"]
restart = "always"
""")
    stack.cli("up", "-d")
    time.sleep(3.0)
    row = stack.ps()[f"{stack.name}-crash-1"]
    assert 3 <= row["restarts"] <= 8, row                 # 0.1, 0.2, 0.4, 0.8, 1.6 s … not a busy loop
    log = (Path(stack.env["ENVTOOL_ROOT"]) / "projects" / stack.name / "supervisor.log").read_text()
    delays = [float(d) for d in re.findall(r"crash-1: exited 3, restarting in ([0-9.]+)s", log)]
    assert delays == sorted(delays) and delays[-1] >= 0.8, delays


def test_two_concurrent_ups_take_turns(stack):
    stack.write("""
[services.a]
image = "py"
command = ["sleep", "600"]
init = true
replicas = 2
""")
    procs = [subprocess.Popen([sys.executable, "-m", "envtool", "-C", str(stack.dir), "up", "-d"], env=stack.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in results] == [0, 0], results      # never "another up is in progress"
    rows = stack.ps()
    assert sorted(rows) == [f"{stack.name}-a-1", f"{stack.name}-a-2"]
    assert all(r["status"] == "running" for r in rows.values())


def test_volume_data_survives_supervisor_crash_down_and_up(stack):
    stack.write("""
[services.db]
image = "py"
command = ["sh", "-c", "echo started >> /data/log; exec sleep 600"]
init = true
volumes = ["data:/data"]

[volumes.data]
""")

    def lines() -> list[str]:
        return stack.cli("exec", "db", "cat", "/data/log", check=True).stdout.split()

    stack.cli("up", "-d", check=True)
    assert lines() == ["started"]
    os.kill(stack.supervisor_pid(), signal.SIGKILL)
    stack.cli("up", "-d", check=True)                      # re-adopted: no second start
    assert lines() == ["started"]
    stack.cli("down", check=True)
    stack.cli("up", "-d", check=True)
    assert lines() == ["started", "started"]


def _supervisor_pid(stack) -> int | None:
    try:
        return stack.supervisor_pid()
    except (OSError, ValueError):
        return None


def _kill_supervisor_later(stack, rng: random.Random, proc: subprocess.Popen, within: float) -> bool:
    """Kill -9 the supervisor at a random moment while `proc` runs; True if it was killed."""
    deadline = time.monotonic() + rng.uniform(0.0, within)
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    pid = _supervisor_pid(stack)
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
            return True
        except ProcessLookupError:
            pass
    return False


def test_kill_9_of_the_supervisor_at_random_points_of_up_and_down(stack):
    port = free_port()
    stack.write(f"""
[services.web]
image = "py"
command = ["python3", "-m", "http.server", "8000"]
init = true
ports = ["{port}:8000"]
healthcheck = {{ command = ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000')"], interval = "100ms", retries = 50 }}

[services.worker]
image = "py"
command = ["sleep", "600"]
init = true
replicas = 2
depends_on = {{ web = "healthy" }}
""")
    links, tables = host_links(), envtool_tables()
    rng = random.Random(20261124)
    killed = 0
    for _ in range(6):
        for op in (["up", "-d"], ["down"]):
            proc = subprocess.Popen([sys.executable, "-m", "envtool", "-C", str(stack.dir), *op], env=stack.env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            killed += _kill_supervisor_later(stack, rng, proc, 0.5 if op[0] == "up" else 0.2)
            proc.wait(timeout=120)
            again = stack.cli(*op)                          # the next command always succeeds
            assert again.returncode == 0, (op, again.stderr, stack.supervisor_log())
            if op[0] == "up":
                rows = stack.ps()
                assert len(rows) == 3 and all(r["status"] in ("running", "healthy") for r in rows.values()), rows
    assert killed >= 4                                      # the rest landed after the command ended
    assert host_links() == links and envtool_tables() == tables
    with open("/proc/self/mounts") as f:
        assert stack.name not in f.read()
    assert not (Path(stack.env["ENVTOOL_ROOT"]) / "projects" / stack.name).exists()


CYCLES = int(os.environ.get("ENVTOOL_CYCLES", "200"))


@pytest.mark.long
def test_many_up_down_cycles_leak_nothing(stack):
    """The long variant of test_no_leaks_over_repeated_up_down: `pytest -m long` (ENVTOOL_CYCLES)."""
    stack.write(f'[services.web]\nimage = "py"\ncommand = ["sleep", "600"]\ninit = true\n'
                f'ports = ["{free_port()}:8000"]\n')
    links, tables = host_links(), envtool_tables()
    root = Path(stack.env["ENVTOOL_ROOT"])
    containers = set(os.listdir(root / "containers"))
    for _ in range(CYCLES):
        stack.cli("up", "-d", check=True)
        stack.cli("down", check=True)
    assert host_links() == links and envtool_tables() == tables
    with open("/proc/self/mounts") as f:
        assert stack.name not in f.read()
    assert set(os.listdir(root / "containers")) == containers
    assert not (root / "projects" / stack.name).exists()


def test_an_up_refused_by_its_command_line_leaves_no_supervisor_behind(stack):
    """`up` starts the project's supervisor before typer reads the rest of the line; a line typer
    then refuses must take it away again, with the project's state directory."""
    stack.write('[services.web]\nimage = "py"\ncommand = ["sleep", "60"]\n')
    project = Path(stack.env["ENVTOOL_ROOT"]) / "projects" / stack.name
    proc = stack.cli("up", "-d", "--no-such-option")
    assert proc.returncode == 2 and "No such option" in proc.stderr
    assert not project.exists(), list(project.iterdir()) if project.exists() else None
    proc = stack.cli("up", "-d", check=True)                   # and a right one still works
    assert stack.ps()[f"{stack.name}-web-1"]["status"] == "running"
