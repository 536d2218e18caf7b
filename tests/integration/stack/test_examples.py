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


# the app's own start-up, timed inside its container: python3 api/app.py on another port until it accepts
STARTUP = ("import os, socket, subprocess, sys, time\n"
           "t0 = time.monotonic()\n"
           "p = subprocess.Popen([sys.executable, 'api/app.py'], env={**os.environ, 'PORT': '8001'},\n"
           "                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
           "while socket.socket().connect_ex(('127.0.0.1', 8001)) != 0:\n"
           "    assert time.monotonic() - t0 < 20\n"
           "    time.sleep(0.005)\n"
           "print(time.monotonic() - t0); p.kill()\n")


def test_shop_hot_reload_through_nginx_without_a_failed_request(tmp_path, envtool_env, leak_check):
    """sync+restart of the shop's Flask API behind nginx while a browser-like client hits the
    published port every 20 ms: no request fails (the new API starts beside the old one, which keeps
    serving until then, and nginx, which resolved `api` once, reaches the new one at the same
    address) and the edit shows up without waiting out a grace period or a SYN retransmission."""
    import http.client
    import shutil
    import statistics
    import uuid

    from .conftest import free_port
    from .test_stack import Hammer

    proj = tmp_path / "shop"
    shutil.copytree(EXAMPLES / "shop", proj)
    port, name = free_port(), f"s{uuid.uuid4().hex[:8]}"
    toml = (proj / "envtool.toml").read_text().replace('name = "shop"', f'name = "{name}"')
    (proj / "envtool.toml").write_text(toml.replace('"8080:80"', f'"{port}:80"'))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "envtool", "-C", str(proj), *args], env=envtool_env,
                              capture_output=True, text=True, timeout=600)

    def body() -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                return r.read().decode()
        except (OSError, http.client.HTTPException):        # the Hammer counts failures; this only looks
            return ""

    try:
        up = run("up", "-d", "--watch", "--progress", "plain")
        assert up.returncode == 0, up.stderr[-3000:]
        deadline = time.monotonic() + 60
        while '"service":"api"' not in body():
            assert time.monotonic() < deadline, run("ps").stdout
            time.sleep(0.1)
        app = proj / "api" / "app.py"
        source = app.read_text()
        latencies = []
        with Hammer(port) as h:                          # the browser: its answers time the reloads too
            for i in range(5):
                time.sleep(0.5)
                app.write_text(source.replace('service="api"', f'service="api-v{i}"'))
                t0 = time.monotonic()
                while not (seen := [t for who, t in list(h.first.items()) if f'"service":"api-v{i}"' in who]):
                    assert time.monotonic() - t0 < 20, run("logs", "watch").stdout[-2000:]
                    time.sleep(0.02)
                latencies.append(min(seen) - t0)
            time.sleep(0.5)
        floors = [float(run("exec", "api", "python3", "-c", STARTUP).stdout) for _ in range(3)]
        floor, latency = statistics.median(floors), statistics.median(latencies)
        print(f"hot reload: median {latency * 1000:.0f} ms, app start-up {floor * 1000:.0f} ms")
        assert h.failures == [], h.failures[:5]
        assert all('"service":"api' in who for who in h.seen), list(h.seen)[:3]
        # the target is start-up + 200 ms; measured here: start-up + 450-550 ms, spent in change
        # detection (~90 ms), the new container's start (~100 ms), the app's own healthcheck (a python3
        # process, ~80-100 ms once it listens) and the address handover (~40 ms); see
        # docs/benchmarks.md.  Asserted: no grace period or SYN retransmission is waited out (>= 1 s)
        assert latency <= floor + 1.0, (latencies, floors)
    finally:
        down = run("down", "--volumes")
        assert down.returncode == 0, down.stderr
