"""Rolling update: what a client sees while a running web service is replaced by a changed one.

    .venv/bin/python tests/bench/bench_update.py [--changes 5] [--write docs/benchmarks.md]

The service is a small Python web app written as people write one: no init, no healthcheck, no
SIGTERM handler, half a second of start-up before it accepts; it answers with its VERSION. A
client hits the published port every 20 ms with a 1 s timeout (an impatient browser) while the
environment's VERSION changes and `up -d` runs; for each tool: failed requests, the longest
request, how long `up -d` took, and the app's own start-up (the floor: no tool can serve the new
version sooner).  Peers: docker compose (recreate) and podman-compose, one replica each (neither
shares a host port between replicas outside Swarm); envtool with one replica and with two.
Peers get the rootfs through `podman import` / `docker import`.  A tool that is missing or fails
is reported, not skipped silently.  Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench_stack import IMAGE, import_image  # the peers get the test image as bench_stack gives it

REPO = Path(__file__).resolve().parents[2]
ROOT = os.environ.get("ENVTOOL_ROOT", "/var/tmp/envtool-test")
PORT = 18182
BOOT = 0.5
APP = ("import http.server, os, time\n"
       f"time.sleep({BOOT})\n"
       "class H(http.server.BaseHTTPRequestHandler):\n"
       "    def do_GET(self):\n"
       "        body = os.environ['VERSION'].encode()\n"
       "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
       "        self.end_headers(); self.wfile.write(body)\n"
       "    def log_message(self, *a): pass\n"
       "http.server.ThreadingHTTPServer(('', 8000), H).serve_forever()\n")


def envtool_toml(version: str, replicas: int) -> str:
    return (f'[project]\nname = "benchupdate"\n[images.py]\nfrom = "debian:bookworm"\npackages = ["python3"]\n'
            f'[services.web]\nimage = "py"\ncommand = ["python3", "/app/app.py"]\nvolumes = ["./app.py:/app/app.py:ro"]\n'
            f'ports = ["{PORT}:8000"]\nreplicas = {replicas}\nenvironment = {{ VERSION = "{version}" }}\n')


def compose_yaml(version: str) -> str:
    return (f"services:\n  web:\n    image: {IMAGE}\n    command: [\"python3\", \"/app/app.py\"]\n"
            f"    volumes: [\"./app.py:/app/app.py:ro\"]\n    ports: [\"{PORT}:8000\"]\n"
            f"    environment: {{ VERSION: \"{version}\" }}\n    ulimits: {{ nofile: 1024, nproc: 1024 }}\n")


class Client:
    """One request every 20 ms, 1 s timeout; bounded to 10 minutes."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.failed = 0
        self.ok = 0
        self.longest = 0.0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        for _ in range(30000):
            if self.stop.is_set():
                return
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=1.0) as r:
                    r.read()
                self.ok += 1
            except Exception:  # noqa: BLE001 - every failure counts
                self.failed += 1
            self.longest = max(self.longest, time.perf_counter() - t0)
            time.sleep(0.02)


def wait_version(version: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=1) as r:
                if r.read().decode() == version:
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def measure(write: object, up: list[str], down: list[str], changes: int, cwd: str,
            env: dict[str, str] | None = None) -> dict:
    subprocess.run(down, cwd=cwd, env=env, capture_output=True)
    write("v0")  # type: ignore[operator]
    proc = subprocess.run(up, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not wait_version("v0"):
        subprocess.run(down, cwd=cwd, env=env, capture_output=True)
        return {"error": ((proc.stderr or proc.stdout).strip().splitlines() or ["never served"])[-1][:200]}
    failed, longest, ups, visible, ok_counts = [], [], [], [], []
    try:
        for i in range(1, changes + 1):
            c = Client()
            c.thread.start()
            time.sleep(0.5)
            write(f"v{i}")  # type: ignore[operator]
            t0 = time.perf_counter()
            proc = subprocess.run(up, cwd=cwd, env=env, capture_output=True, text=True)
            t1 = time.perf_counter()
            ok = wait_version(f"v{i}")
            t2 = time.perf_counter()
            time.sleep(0.5)
            c.stop.set()
            c.thread.join(5)
            if proc.returncode != 0 or not ok:
                return {"error": ((proc.stderr or proc.stdout).strip().splitlines() or ["never served"])[-1][:200]}
            failed.append(c.failed)
            ok_counts.append(c.ok + c.failed)
            longest.append(c.longest)
            ups.append(t1 - t0)
            visible.append(t2 - t0)
    finally:
        subprocess.run(down, cwd=cwd, env=env, capture_output=True)
    return {"failed": sum(failed), "requests": sum(ok_counts), "failed_per_change": statistics.median(failed),
            "longest_s": round(max(longest), 3), "up_s": round(statistics.median(ups), 3),
            "visible_s": round(statistics.median(visible), 3), "changes": changes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=5)
    ap.add_argument("--write")
    args = ap.parse_args()
    env = {**os.environ, "ENVTOOL_ROOT": ROOT, "NO_COLOR": "1"}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "app.py").write_text(APP)
        et = [sys.executable, "-m", "envtool", "-C", tmp]
        for replicas in (1, 2):
            def write_et(v: str, n: int = replicas) -> None:
                (d / "envtool.toml").write_text(envtool_toml(v, n))
            write_et("v0")
            subprocess.run([*et, "build"], env=env, check=True, capture_output=True)
            results[f"envtool ({replicas} replica{'s' if replicas > 1 else ''})"] = measure(
                write_et, [*et, "up", "-d"], [*et, "down"], args.changes, tmp, env)

        sys.path.insert(0, str(REPO))
        from envtool.image.store import Store

        store = Store(ROOT)
        digest = store.resolve("benchupdate/py:latest")
        layer = str(store.blob_path(store.image(digest).layers[0].digest))

        def write_compose(v: str) -> None:
            (d / "compose.yaml").write_text(compose_yaml(v))

        dc = shutil.which("docker-compose")
        docker_ok = shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
        if dc and docker_ok and import_image("docker", layer):
            cmd = [dc, "-p", "benchupdate", "-f", "compose.yaml"]
            results["docker-compose"] = measure(write_compose, [*cmd, "up", "-d"], [*cmd, "down"], args.changes, tmp)
        else:
            results["docker-compose"] = {"error": "docker-compose or a running dockerd not available"}
        pc = shutil.which("podman-compose") or str(Path(sys.executable).parent / "podman-compose")
        if os.path.exists(pc) and import_image("podman", layer):
            cmd = [pc, "--podman-args=--runtime runc", "-p", "benchupdate", "-f", "compose.yaml"]
            results["podman-compose"] = measure(write_compose, [*cmd, "up", "-d"], [*cmd, "down"], args.changes, tmp)
        else:
            results["podman-compose"] = {"error": "podman-compose or podman not available"}
    out = {"figure": "rolling update", "boot_s": BOOT, "results": results, "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(out, indent=2))
    if args.write:
        write_section(Path(args.write), out)


def write_section(path: Path, out: dict) -> None:
    from report import replace_section

    lines = [f"Measured {out['date']}: {next(iter(out['results'].values())).get('changes', '?')} changes per tool, "
             "each an environment change + `up -d` while a client requests every 20 ms with a 1 s timeout. "
             f"Floor of 'new version served': the app's own start-up, {out['boot_s']} s plus Python's start.", "",
             "| tool | failed requests | longest request | `up -d` returns (median) | new version served (median, "
             "polled once `up -d` returned) |",
             "|---|---:|---:|---:|---:|"]
    for name, r in out["results"].items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} | | | |")
        else:
            lines.append(f"| {name} | {r['failed']} of {r['requests']} | {r['longest_s'] * 1000:.0f} ms | {r['up_s']:.2f} s | "
                         f"{r['visible_s']:.2f} s |")
    replace_section(path, "update", lines)


if __name__ == "__main__":
    main()
