"""Shared fixtures.  Integration tests (marker `root`) start real containers; they share one test
store (ENVTOOL_TEST_ROOT, default /var/tmp/envtool-test) so the Debian test images are built once
per machine, and a leak check fails any test that leaves mounts, cgroups, state or processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
TEST_ROOT = os.environ.get("ENVTOOL_TEST_ROOT", "/var/tmp/envtool-test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (real namespaces, mounts and cgroups)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def store_root() -> str:
    os.makedirs(TEST_ROOT, exist_ok=True)
    _down_abandoned_stacks(TEST_ROOT)
    return TEST_ROOT


def _down_abandoned_stacks(root: str) -> None:
    """A test run killed midway (CI's timeout, a stopped machine) leaves stacks whose supervisor
    died with it: their bridges, nft tables and state would confuse this run's leak checks."""
    from envtool.stack import control, state

    projects = Path(root) / "projects"
    for d in sorted(projects.iterdir()) if projects.is_dir() else []:
        if d.is_dir() and not control.running(state.Paths(d)):
            subprocess.run([sys.executable, "-m", "envtool", "-p", d.name, "down"], env={**os.environ,
                           "ENVTOOL_ROOT": root}, capture_output=True, timeout=120, cwd="/")


@pytest.fixture
def envtool_env(store_root: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("ENVTOOL_ROOT", store_root)
    return {**os.environ, "ENVTOOL_ROOT": store_root}


def _build(store_root: str, recipe: str) -> str:
    env = {**os.environ, "ENVTOOL_ROOT": store_root}
    proc = subprocess.run([sys.executable, "-m", "envtool", "-C", str(DATA / "images"), "build", recipe,
                           "--json", "--progress", "plain"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    return str(json.loads(proc.stdout)[0]["digest"])


@pytest.fixture(scope="session")
def py_image(store_root: str) -> str:
    """Debian bookworm minbase + python3 (the probe's interpreter)."""
    return _build(store_root, "py")


@pytest.fixture(scope="session")
def bb_image(store_root: str) -> str:
    """busybox-static only (mmdebstrap's extract variant: a 2 MB image)."""
    return _build(store_root, "bb")


def _snapshot(root: str) -> dict[str, set[str]]:
    with open("/proc/self/mounts") as f:
        mounts = {line.split()[1] for line in f if root in line or "envtool" in line}
    cgroups = set()
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu",
                 "/sys/fs/cgroup/unified"):
        d = os.path.join(base, "envtool")
        if os.path.isdir(d):
            for dirpath, dirnames, _ in os.walk(d):
                cgroups.update(os.path.join(dirpath, n) for n in dirnames)
    containers = set(os.listdir(os.path.join(root, "containers"))) if os.path.isdir(
        os.path.join(root, "containers")) else set()
    children = set()
    try:
        with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
            children = set(f.read().split())
    except OSError:
        pass
    return {"mounts": mounts, "cgroups": cgroups, "containers": containers, "children": children}


@pytest.fixture
def leak_check(store_root: str):
    """Fails the test if it leaves mounts, cgroups, container state dirs or child processes."""
    before = _snapshot(store_root)
    yield
    after = _snapshot(store_root)
    leaked = {k: sorted(after[k] - before[k]) for k in after if after[k] - before[k]}
    assert not leaked, f"leaked host resources: {leaked}"
