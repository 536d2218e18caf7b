"""Scale: one service with 1, 10, 50 and 100 replicas on this 2-core machine — time for `up -d`
and `down`, the supervisor's memory, and what each container adds.

    .venv/bin/python tests/bench/bench_scale.py [--write docs/benchmarks.md]

Each replica is `sleep` under tini (init = true) from the test image; every replica gets its own
namespaces, overlay rootfs, cgroup, veth and address.  No Python process runs per container: the
supervisor forks them in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.environ.get("ENVTOOL_ROOT", "/var/tmp/envtool-test")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def mem_available_mib() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return 0.0


def host_processes() -> int:
    return sum(1 for p in os.listdir("/proc") if p.isdigit())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write")
    args = ap.parse_args()
    env = {**os.environ, "ENVTOOL_ROOT": ROOT, "NO_COLOR": "1"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cli = [sys.executable, "-m", "envtool", "-C", tmp]
        for n in (1, 10, 50, 100):
            Path(tmp, "envtool.toml").write_text(
                '[project]\nname = "scalebench"\n[images.py]\nfrom = "debian:bookworm"\npackages = ["python3"]\n'
                f'[services.s]\nimage = "py"\ncommand = ["sleep", "600"]\ninit = true\nreplicas = {n}\n')
            subprocess.run([*cli, "build"], env=env, check=True, capture_output=True)
            time.sleep(0.5)
            avail, procs = mem_available_mib(), host_processes()
            t0 = time.perf_counter()
            subprocess.run([*cli, "up", "-d"], env=env, check=True, capture_output=True)
            up = time.perf_counter() - t0
            ps = json.loads(subprocess.run([*cli, "ps", "--json"], env=env, check=True, capture_output=True,
                                           text=True).stdout)
            assert len(ps) == n and all(r["status"] == "running" for r in ps)
            sup = int((Path(ROOT) / "projects" / "scalebench" / "supervisor.lock").read_text())
            sup_rss = rss_kib(sup)
            time.sleep(0.5)
            used = avail - mem_available_mib()
            extra = host_processes() - procs - 2 * n            # beyond tini + sleep in each container
            per = sum(rss_kib(r["pid"]) for r in ps) / n          # tini, PID 1 of each container
            t0 = time.perf_counter()
            subprocess.run([*cli, "down"], env=env, check=True, capture_output=True)
            down = time.perf_counter() - t0
            rows.append({"containers": n, "up_s": round(up, 2), "down_s": round(down, 2),
                         "supervisor_rss_mib": round(sup_rss / 1024, 1), "init_rss_kib_each": round(per),
                         "used_mib": round(used, 1), "used_mib_per_container": round(used / n, 2),
                         "other_host_processes": extra})
    base = rows[0]
    for r in rows[1:]:
        r["ms_per_extra_container"] = round((r["up_s"] - base["up_s"]) * 1000 / (r["containers"] - 1), 1)
    print(json.dumps(rows, indent=2))
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from report import replace_section

        lines = [f"Measured {time.strftime('%Y-%m-%d')}.", "",
                 "| containers | up -d | per extra container | down | supervisor RSS | PID 1 (tini) RSS each | "
                 "host memory used (per container) | host processes besides the containers' own |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['containers']} | {r['up_s']} s | {r.get('ms_per_extra_container', '–')} ms | "
                         f"{r['down_s']} s | {r['supervisor_rss_mib']} MiB | {r['init_rss_kib_each']} KiB | "
                         f"{r['used_mib']} MiB ({r['used_mib_per_container']} MiB) | {r['other_host_processes']} |")
        replace_section(Path(args.write), "scale", lines)


if __name__ == "__main__":
    main()
