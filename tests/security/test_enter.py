"""Hole 1: a process that enters a container (envtool exec, every healthcheck) could be frozen,
inspected and hijacked by the container's root before it exec'd: still dumpable, no seccomp, no
no_new_privs, holding the supervisor's or the CLI's fds (runc's CVE-2016-9962 class)."""

import json
import time

import pytest

from .conftest import arm

pytestmark = pytest.mark.root


def test_a_container_root_cannot_hijack_exec_or_healthcheck_processes(stack):
    out = stack.dir / "out"
    out.mkdir()
    stack.write(f"""
[services.victim]
image = "py"
command = ["python3", "/attack/watch_enter.py"]
volumes = ["{arm(stack.dir)}", "./out:/out"]
healthcheck = {{ command = ["true"], interval = "100ms", retries = 1000 }}
""")
    stack.cli("up", "-d", check=True)
    deadline = time.monotonic() + 20
    while not (out / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for _ in range(12):                                  # the CLI's way in, beside the healthchecks
        stack.cli("exec", "victim", "true", check=True)
    time.sleep(1)
    (out / "stop").touch()
    seen = [json.loads(line) for line in (out / "seen.jsonl").read_text().splitlines()]
    assert len(seen) >= 10, f"the attacker saw too few visitors to judge: {seen}"
    unconfined = [s for s in seen if s["Seccomp"] != "2" or s["NoNewPrivs"] != "1"]
    assert not unconfined, f"a visitor was seen without seccomp or no_new_privs: {unconfined[:3]}"
    foreign = [s for s in seen if s["foreign"]]
    assert not foreign, f"a visitor held, or gave up to pidfd_getfd, fds of the host's: {foreign[:3]}"
