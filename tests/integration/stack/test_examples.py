"""Every example comes up and answers real requests through its published port (apko's
examples-test); `run`-only examples run."""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def cli(env, example, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "envtool", "-C", str(EXAMPLES / example), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def wait_healthy(env, example, service, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = json.loads(cli(env, example, "ps", "--json").stdout)
        if any(r["service"] == service and r["status"] == "healthy" for r in rows):
            return rows
        time.sleep(0.2)
    pytest.fail(f"{service} never became healthy: {rows}")


def get(path, data=None):
    req = urllib.request.Request(f"http://127.0.0.1:8080{path}", data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, json.loads(r.read())


def test_shop(envtool_env, leak_check):
    try:
        up = cli(envtool_env, "shop", "up", "-d", "--progress", "plain")
        assert up.returncode == 0, up.stderr[-3000:]
        rows = wait_healthy(envtool_env, "shop", "web")
        assert {r["service"] for r in rows} == {"web", "api", "redis", "worker"}
        assert all(r["ip"] and r["pid"] for r in rows)
        status, first = get("/")
        assert status == 200 and first["service"] == "api" and first["host"] == "api"
        _, second = get("/")
        assert second["visits"] == first["visits"] + 1          # state round-tripped through redis
        status, queued = get("/jobs", b"order-42")
        assert status == 202
        deadline = time.monotonic() + 10
        while get("/")[1]["processed"] < first["processed"] + 1:  # the worker took the job
            assert time.monotonic() < deadline
            time.sleep(0.1)
        logs = cli(envtool_env, "shop", "logs", "worker").stdout
        assert "processed order-42" in logs
    finally:
        down = cli(envtool_env, "shop", "down", "--volumes")
        assert down.returncode == 0, down.stderr


def test_hello(envtool_env, leak_check):
    proc = cli(envtool_env, "hello", "run", "hello")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("hello from ") and "NoNewPrivs 1" in proc.stdout


def test_hello_as_a_one_off_service(envtool_env, leak_check):
    try:
        up = cli(envtool_env, "hello", "up", "-d")
        assert up.returncode == 0, up.stderr[-2000:]
        for _ in range(100):
            logs = cli(envtool_env, "hello", "logs").stdout
            if "hello from hello" in logs:
                break
            time.sleep(0.05)
        assert "hello from hello: pid 1, uid 999" in logs, logs
    finally:
        assert cli(envtool_env, "hello", "down").returncode == 0
