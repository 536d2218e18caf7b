"""Hot-reload latency on the shop example: from a file write to the first HTTP response that
shows the change, over 20 edits each.

    .venv/bin/python tests/bench/bench_watch.py [--edits 20] [--write docs/benchmarks.md]

The example is copied to a temporary directory (project "shopbench", port 18282) and run with
`up -d --watch`.  sync+restart: api/app.py changes the JSON the API returns (nginx → Flask, which
restarts); sync: static/index.html served by nginx.  Requests go to 127.0.0.1 every 5 ms, each
with a 150 ms timeout.
"""

from __future__ import annotations

import argparse
import http.client
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
PORT = 18282


def get(path: str) -> str:
    # a short timeout: a request caught in the restart window waits for TCP's 1 s SYN retransmit
    # (the old container is gone, the new one not yet listening); the next request sees the new one
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}", timeout=0.15) as r:
            return r.read().decode()
    except (OSError, http.client.HTTPException):        # also a response cut by the restart
        return ""


def until(check, timeout: float = 15.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if check():
            return time.perf_counter() - t0
        time.sleep(0.005)
    raise RuntimeError("timed out")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--write")
    args = ap.parse_args()
    env = {**os.environ, "ENVTOOL_ROOT": ROOT, "NO_COLOR": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        proj = Path(tmp) / "shop"
        shutil.copytree(REPO / "examples" / "shop", proj)
        toml = (proj / "envtool.toml").read_text().replace('name = "shop"', 'name = "shopbench"')
        (proj / "envtool.toml").write_text(toml.replace('"8080:80"', f'"{PORT}:80"'))
        cli = [sys.executable, "-m", "envtool", "-C", str(proj)]
        subprocess.run([*cli, "up", "-d", "--watch"], env=env, check=True, capture_output=True)
        try:
            until(lambda: '"service":"api"' in get("/"), 60)
            app = proj / "api" / "app.py"
            source = app.read_text()
            restart, sync = [], []
            for i in range(args.edits):
                app.write_text(source.replace('service="api"', f'service="api-v{i}"'))
                restart.append(until(lambda i=i: f'"service":"api-v{i}"' in get("/")))
                time.sleep(0.3)
            index = proj / "static" / "index.html"
            for i in range(args.edits):
                index.write_text(f"<h1>edit {i}</h1>\n")
                sync.append(until(lambda i=i: f"edit {i}" in get("/static/index.html")))
                time.sleep(0.1)
        except RuntimeError:                        # say what the watcher and the supervisor did
            logs = Path(ROOT) / "projects" / "shopbench"
            for f in (logs / "logs" / "shopbench-watch.log", logs / "supervisor.log"):
                if f.exists():
                    sys.stderr.write(f"--- {f}\n" + "\n".join(f.read_text().splitlines()[-15:]) + "\n")
            raise
        finally:
            subprocess.run([*cli, "down", "--volumes"], env=env, capture_output=True)
    out = {"sync+restart (Python API)": summary(restart), "sync (static file)": summary(sync),
           "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(out, indent=2))
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from report import replace_section

        lines = [f"Measured {out['date']} over {args.edits} edits each.", "",
                 "| action | median | min | max |", "|---|---:|---:|---:|"]
        for k in ("sync+restart (Python API)", "sync (static file)"):
            r = out[k]
            lines.append(f"| {k} | {r['median_ms']} ms | {r['min_ms']} ms | {r['max_ms']} ms |")
        replace_section(Path(args.write), "watch", lines)


def summary(xs: list[float]) -> dict:
    ms = [x * 1000 for x in xs]
    return {"median_ms": round(statistics.median(ms)), "min_ms": round(min(ms)), "max_ms": round(max(ms))}


if __name__ == "__main__":
    main()
