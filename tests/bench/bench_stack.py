"""Stack `up` until ready and `down`: envtool against podman-compose and docker compose.

    .venv/bin/python tests/bench/bench_stack.py [--runs 10] [--write docs/benchmarks.md]

N services (--services, default 3) from the same rootfs (the test image's single layer: Debian
bookworm minbase + python3), each `python3 -m http.server`: s1 is the base, s2 … s(N-1) wait for
it to be healthy, the last waits for all of them and publishes a port (N = 3: a chain).  Measured per tool: `up -d` until the command returns, until c's published port answers
(ready), and `down`.  Peers get the rootfs through `podman import` / `docker import`.  podman runs
with `--runtime runc` and low ulimits (crun refuses this hybrid-cgroup host; no CAP_SYS_RESOURCE).
Tools that are missing or fail are reported, not skipped silently.
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
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOT = os.environ.get("ENVTOOL_ROOT", "/var/tmp/envtool-test")
PORT = 18181
IMAGE = "localhost/envtool-bench-py:latest"
HEALTH = "import urllib.request as u; u.urlopen('http://127.0.0.1:8000')"

def topology(n: int) -> list[tuple[str, list[str], bool, bool]]:
    """(name, depends on (healthy), has a healthcheck, publishes the port) for n services: s1 is
    the base; s2 … s(n-1) wait for s1 to be healthy; the last waits for all of them to be healthy
    and publishes the port (n = 3 is a chain s1 ← s2 ← s3)."""
    names = [f"s{i}" for i in range(1, n + 1)]
    out = [(names[0], [], True, False)]
    out += [(name, [names[0]], True, False) for name in names[1:-1]]
    out.append((names[-1], names[1:-1] or names[:1], False, True))
    return out


def envtool_toml(n: int) -> str:
    lines = ['[project]\nname = "benchstack"\n', '[images.py]\nfrom = "debian:bookworm"\npackages = ["python3"]\n']
    for name, deps, health, publish in topology(n):
        lines.append(f'[services.{name}]\nimage = "py"\ncommand = ["python3", "-m", "http.server", "8000"]\n'
                     "init = true\n")
        if deps:
            lines.append("depends_on = { " + ", ".join(f'{d} = "healthy"' for d in deps) + " }\n")
        if health:
            lines.append(f'healthcheck = {{ command = ["python3", "-c", "{HEALTH}"], interval = "1s", retries = 50 }}\n')
        if publish:
            lines.append(f'ports = ["{PORT}:8000"]\n')
    return "".join(lines)


def compose_yaml(n: int) -> str:
    svc = []
    for name, deps, health, publish in topology(n):
        lines = [f"  {name}:", f"    image: {IMAGE}", '    command: ["python3", "-m", "http.server", "8000"]',
                 "    init: true", "    ulimits: { nofile: 1024, nproc: 1024 }"]
        if deps:
            lines.append("    depends_on: { " + ", ".join(f"{d}: {{ condition: service_healthy }}" for d in deps) + " }")
        if health:
            lines.append(f'    healthcheck: {{ test: ["CMD", "python3", "-c", "{HEALTH}"], interval: 1s, retries: 50 }}')
        if publish:
            lines.append(f'    ports: ["{PORT}:8000"]')
        svc.append("\n".join(lines))
    return "services:\n" + "\n".join(svc) + "\n"


def wait_port(timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.02)
    return False


def measure(up: list[str], down: list[str], runs: int, cwd: str, env: dict[str, str] | None = None) -> dict:
    ups, readies, downs = [], [], []
    subprocess.run(down, cwd=cwd, env=env, capture_output=True)
    for i in range(runs + 1):
        t0 = time.perf_counter()
        proc = subprocess.run(up, cwd=cwd, env=env, capture_output=True, text=True)
        t1 = time.perf_counter()
        if proc.returncode != 0:
            subprocess.run(down, cwd=cwd, env=env, capture_output=True)
            return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1][:200]}
        ok = wait_port()
        t2 = time.perf_counter()
        proc = subprocess.run(down, cwd=cwd, env=env, capture_output=True, text=True)
        t3 = time.perf_counter()
        if not ok:
            return {"error": "the published port never answered"}
        if i == 0:
            continue                                   # warm-up
        ups.append(t1 - t0)
        readies.append(t2 - t0)
        downs.append(t3 - t2)
    return {"up_s": stats(ups), "ready_s": stats(readies), "down_s": stats(downs), "runs": runs}


def stats(xs: list[float]) -> dict:
    return {"median": round(statistics.median(xs), 3), "min": round(min(xs), 3), "max": round(max(xs), 3)}


def import_image(tool: str, layer_tar: str) -> bool:
    if not shutil.which(tool):
        return False
    return subprocess.run([tool, "import", layer_tar, IMAGE], capture_output=True).returncode == 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--services", type=int, default=3)
    ap.add_argument("--write")
    args = ap.parse_args()
    env = {**os.environ, "ENVTOOL_ROOT": ROOT, "NO_COLOR": "1"}
    results: dict[str, dict] = {}
    versions: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "envtool.toml").write_text(envtool_toml(args.services))
        (Path(tmp) / "compose.yaml").write_text(compose_yaml(args.services))
        et = [sys.executable, "-m", "envtool", "-C", tmp]
        subprocess.run([*et, "build"], env=env, check=True, capture_output=True)
        results["envtool"] = measure([*et, "up", "-d"], [*et, "down"], args.runs, tmp, env)
        versions["envtool"] = "0.1.0 (this tree)"

        sys.path.insert(0, str(REPO))
        from envtool.image.store import Store

        store = Store(ROOT)
        digest = store.resolve("benchstack/py:latest")
        layer = store.blob_path(store.image(digest).layers[0].digest)

        pc = shutil.which("podman-compose") or str(Path(sys.executable).parent / "podman-compose")
        if os.path.exists(pc) and import_image("podman", str(layer)):
            cmd = [pc, "--podman-args=--runtime runc", "-p", "benchstack", "-f", "compose.yaml"]
            results["podman-compose"] = measure([*cmd, "up", "-d"], [*cmd, "down"], args.runs, tmp)
            versions["podman-compose"] = subprocess.run([pc, "--version"], capture_output=True, text=True
                                                        ).stdout.strip().replace("\n", ", ")
        else:
            results["podman-compose"] = {"error": "podman-compose or podman not available"}
        dc = shutil.which("docker-compose")
        docker_ok = shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
        if dc and docker_ok and import_image("docker", str(layer)):
            cmd = [dc, "-p", "benchstack", "-f", "compose.yaml"]
            results["docker-compose"] = measure([*cmd, "up", "-d"], [*cmd, "down"], args.runs, tmp)
            versions["docker-compose"] = subprocess.run([dc, "version", "--short"], capture_output=True,
                                                        text=True).stdout.strip()
            versions["docker"] = subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"],
                                                capture_output=True, text=True).stdout.strip()
        else:
            results["docker-compose"] = {"error": "docker-compose or a running dockerd not available"}
    out = {"figure": f"{args.services}-service stack up/down", "services": args.services, "results": results,
           "versions": versions,
           "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(out, indent=2))
    if args.write:
        write_section(Path(args.write), out)


def write_section(path: Path, out: dict) -> None:
    from report import replace_section

    lines = [f"Measured {out['date']}; medians (min–max) over the runs shown, after one warm-up.", "",
             "| tool | up -d returns | ready (port answers) | down | runs |", "|---|---:|---:|---:|---:|"]
    for name, r in out["results"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | |")
            continue
        cell = [f"{r[k]['median']:.2f} s ({r[k]['min']:.2f}–{r[k]['max']:.2f})" for k in ("up_s", "ready_s", "down_s")]
        lines.append(f"| {name} | {' | '.join(cell)} | {r['runs']} |")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items())]
    replace_section(path, "stack" if out["services"] == 3 else f"stack-{out['services']}", lines)


if __name__ == "__main__":
    main()
