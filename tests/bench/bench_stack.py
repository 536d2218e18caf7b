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
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
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


def measure(up: list[str], down: list[str], runs: int, cwd: str, env: dict[str, str] | None = None,
            timeline: Callable[[float, float], dict[str, float]] | None = None) -> dict:
    """`timeline(wall start, ready)`, where given, says where a run's time went (envtool's log)."""
    ups, readies, downs, phases = [], [], [], []
    subprocess.run(down, cwd=cwd, env=env, capture_output=True)
    for i in range(runs + 1):
        wall0 = time.time()
        t0 = time.perf_counter()
        proc = subprocess.run(up, cwd=cwd, env=env, capture_output=True, text=True)
        t1 = time.perf_counter()
        if proc.returncode != 0:
            subprocess.run(down, cwd=cwd, env=env, capture_output=True)
            return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1][:200]}
        ok = wait_port()
        t2 = time.perf_counter()
        if timeline is not None and ok and i > 0:
            phases.append(timeline(wall0, wall0 + (t2 - t0)))
        proc = subprocess.run(down, cwd=cwd, env=env, capture_output=True, text=True)
        t3 = time.perf_counter()
        if not ok:
            return {"error": "the published port never answered"}
        if i == 0:
            continue                                   # warm-up
        ups.append(t1 - t0)
        readies.append(t2 - t0)
        downs.append(t3 - t2)
    out = {"up_s": stats(ups), "ready_s": stats(readies), "down_s": stats(downs), "runs": runs}
    if phases:
        out["phases_s"] = {k: round(statistics.median(p[k] for p in phases), 3) for k in phases[0]}
    return out


LOG_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) (.*)$")


def envtool_timeline(log: Path, n: int) -> Callable[[float, float], dict[str, float]]:
    """Where envtool's time went in one `up`, from its supervisor's log (wall clock, ms): before
    the first container starts (the CLI, the supervisor's start, the network), the services on the
    critical path from their start until healthy (or, the last, accepting), the gaps between one
    being ready and its dependant starting, and from the last one accepting until its port answered
    the bench (up -d's return included)."""
    names = [name for name, *_ in topology(n)]

    def parse(wall0: float, ready: float) -> dict[str, float]:
        day = time.mktime(time.localtime(wall0)[:3] + (0, 0, 0, 0, 0, -1))
        events: dict[str, float] = {}
        for line in log.read_text(errors="replace").splitlines():
            m = LOG_LINE.match(line)
            if not m:
                continue
            t = day + int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) + int(m[4]) / 1000
            if t < wall0 - 0.001:
                continue
            text = m[5]
            for name in names:
                tag = f"benchstack-{name}-1: "
                if text.startswith(tag):
                    what = text[len(tag):].split(" ", 1)[0]
                    events.setdefault(f"{name} {what}", t)
        first, last = names[0], names[-1]
        middle = names[1:-1]
        tiers = [[first], middle, [last]] if middle else [[first], [last]]
        services = gaps = 0.0
        for k, tier in enumerate(tiers):
            start = min(events[f"{s} started"] for s in tier)
            done = max(events[f"{s} {'accepting' if s == last else 'healthy'}"] for s in tier)
            services += done - start
            if k + 1 < len(tiers):
                gaps += min(events[f"{s} started"] for s in tiers[k + 1]) - done
        return {"before_first_start": events[f"{first} started"] - wall0, "services": services,
                "between_services": gaps, "after_last_ready": ready - events[f"{last} accepting"]}

    return parse


def floor(et: list[str], env: dict[str, str], n: int, runs: int) -> dict:
    """The critical path of the services' own work, timed inside a container of the same image
    (tests/bench/floor_services.py), plus one container start per service as envtool's runtime
    makes it in process (the bench_start figure): what no tool can avoid."""
    script = Path(__file__).with_name("floor_services.py")
    proc = subprocess.run([*et, "run", "--rm", "-v", f"{script}:/floor.py:ro", "py", "python3", "/floor.py",
                           str(n), str(runs)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1][:200]}
    inside = json.loads(proc.stdout)
    sys.path.insert(0, str(REPO))
    from bench_start import envtool_inprocess

    from envtool.image.store import Store

    store = Store(ROOT)
    start = envtool_inprocess(store.resolve("benchstack/py:latest"), 10)["median_ms"] / 1000
    return {"services_s": inside["total"], "phases_s": inside, "container_start_s": start,
            "floor_s": round(inside["total"] + n * start, 3)}


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
        results["floor"] = floor(et, env, args.services, max(3, args.runs // 2))
        log = Path(ROOT) / "projects" / "benchstack" / "supervisor.log"
        results["envtool"] = measure([*et, "up", "-d"], [*et, "down"], args.runs, tmp, env,
                                     timeline=envtool_timeline(log, args.services))
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

    fl = out["results"].get("floor", {})
    base = fl.get("floor_s")
    lines = [f"Measured {out['date']}; medians (min–max) over the runs shown, after one warm-up.", "",
             "| tool | up -d returns | ready (port answers) | ready ÷ floor | down | runs |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in out["results"].items():
        if name == "floor":
            continue
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | | |")
            continue
        cell = [f"{r[k]['median']:.2f} s ({r[k]['min']:.2f}–{r[k]['max']:.2f})" for k in ("up_s", "ready_s", "down_s")]
        ratio = f"{r['ready_s']['median'] / base:.2f}×" if base else "–"
        lines.append(f"| {name} | {cell[0]} | {cell[1]} | {ratio} | {cell[2]} | {r['runs']} |")
    if base:
        p = fl["phases_s"]
        n = out["services"]
        lines += ["", f"Floor {base:.2f} s = the services' own critical path {fl['services_s']:.2f} s, timed inside a "
                  f"container (s1 accepts {p['first_accepts']:.3f} s, its healthcheck {p['first_probe']:.3f} s"
                  + (f"; s2…s{n - 1} together accept {p['middle_accept']:.3f} s, their healthchecks "
                     f"{p['middle_probe']:.3f} s" if n > 3 else
                     f"; s2 accepts {p['middle_accept']:.3f} s, its healthcheck {p['middle_probe']:.3f} s")
                  + f"; s{n} accepts {p['last_accepts']:.3f} s) + {n} × one container start in process "
                  f"({fl['container_start_s'] * 1000:.1f} ms)."]
    else:
        lines += ["", f"Floor: not measured ({fl.get('error', 'no result')})."]
    ph = out["results"].get("envtool", {}).get("phases_s")
    if ph:
        lines += ["", f"envtool's time by its supervisor's log (medians): {ph['before_first_start']:.3f} s before the "
                  f"first container starts (CLI, supervisor start, network), {ph['services']:.3f} s the services on the "
                  f"critical path from their start until healthy (the last: accepting), {ph['between_services']:.3f} s "
                  f"between one being ready and its dependants starting, {ph['after_last_ready']:.3f} s from the last "
                  "accepting until `up -d` has returned and the port answered the bench."]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items())]
    replace_section(path, "stack" if out["services"] == 3 else f"stack-{out['services']}", lines)


if __name__ == "__main__":
    main()
