"""Rootless: envtool run by an ordinary user beside rootless podman and podman-compose run by the
same user, on the same image, in one run; envtool as root beside them for the ratio.

    .venv/bin/python tests/bench/bench_rootless.py --user envtool-test [--runs 20] [--write docs/benchmarks.md]

The user needs a subordinate id range (.ci/setup's envtool-test has one).  Figures:
  start   `run --rm py true` by recipe name in the project directory (envtool) and
          `podman run --rm --network none IMG true` (podman), whole process, warm
  stack   bench_stack.py's 3-service health-chained stack: `up -d` until its published port
          answers, and `down` (envtool; podman-compose with the same compose file)
The image is the same bytes for both: built by envtool as the user, `envtool save`d and `podman
load`ed.  podman's storage for the user is set to the kernel's overlay driver (its Debian default
for a fresh user is vfs, which copies the whole image for every container and would make podman
look several times slower than it is); that resets the user's podman storage once.  Its runtime is
set to runc (crun 1.8 refuses this host's hybrid cgroups), in the user's containers.conf.  Published-port
throughput rootless is bench_net.py --rootless USER.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_stack  # noqa: E402

ROOT = os.environ.get("ENVTOOL_ROOT", "/var/tmp/envtool-test")


def as_user(pw: pwd.struct_passwd) -> list[str]:
    return ["runuser", "-u", pw.pw_name, "--", "env", "-i", f"HOME={pw.pw_dir}",
            "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "NO_COLOR=1", "LANG=C.UTF-8"]


def timed(cmd: list[str], runs: int, cwd: str, env: dict[str, str] | None = None) -> dict:
    subprocess.run(cmd, cwd=cwd, env=env, capture_output=True)            # warm-up (a session, a cache)
    xs = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        xs.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1][:200]}
    return {"median_ms": round(statistics.median(xs) * 1000, 1), "min_ms": round(min(xs) * 1000, 1),
            "max_ms": round(max(xs) * 1000, 1), "runs": runs}


def podman_overlay(pw: pwd.struct_passwd) -> None:
    """The user's podman on the kernel's overlay driver, and with runc: crun 1.8 refuses this
    host's hybrid cgroup layout ("cgroups in hybrid mode not supported"), and the root figures
    run podman with runc too (bench_stack.py)."""
    folder = Path(pw.pw_dir) / ".config" / "containers"
    engine = folder / "containers.conf"
    want_engine = '[engine]\nruntime = "runc"\n'
    if not (engine.exists() and engine.read_text() == want_engine):
        subprocess.run([*as_user(pw), "mkdir", "-p", str(folder)], check=True)
        subprocess.run([*as_user(pw), "sh", "-c", f"printf '%s' '{want_engine}' > {engine}"], check=True)
    conf = folder / "storage.conf"
    want = '[storage]\ndriver = "overlay"\n'
    if conf.exists() and conf.read_text() == want:
        return
    subprocess.run([*as_user(pw), "podman", "system", "reset", "-f"], capture_output=True)
    subprocess.run([*as_user(pw), "mkdir", "-p", str(conf.parent)], check=True)
    subprocess.run([*as_user(pw), "sh", "-c", f"printf '%s' '{want}' > {conf}"], check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--user", default="envtool-test")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--stack-runs", type=int, default=5)
    ap.add_argument("--write")
    args = ap.parse_args()
    pw = pwd.getpwnam(args.user)
    u = as_user(pw)
    results: dict[str, dict] = {}
    tmp = tempfile.mkdtemp(prefix="envtool-bench-rootless-", dir="/tmp")
    try:
        os.chmod(tmp, 0o755)
        (Path(tmp) / "envtool.toml").write_text(bench_stack.envtool_toml(3))
        (Path(tmp) / "compose.yaml").write_text(bench_stack.compose_yaml(3))
        subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", tmp], check=True)
        et_user = [*u, sys.executable, "-m", "envtool"]
        subprocess.run([*et_user, "build"], cwd=tmp, check=True, capture_output=True)
        root_env = {**os.environ, "ENVTOOL_ROOT": ROOT, "NO_COLOR": "1"}
        et_root = [sys.executable, "-m", "envtool", "-C", tmp]
        subprocess.run([*et_root, "build"], env=root_env, check=True, capture_output=True)

        results["start: envtool run --rm (root)"] = timed([*et_root, "run", "--rm", "py", "true"], args.runs, tmp,
                                                          root_env)
        results["start: envtool run --rm (rootless)"] = timed([*et_user, "run", "--rm", "py", "true"], args.runs, tmp)
        podman_ok = shutil.which("podman") is not None
        if podman_ok:
            podman_overlay(pw)
            tar = str(Path(tmp) / "py.tar")
            subprocess.run([*et_user, "save", "benchstack/py", "-o", tar], cwd=tmp, check=True, capture_output=True)
            load = subprocess.run([*u, "podman", "load", "-i", tar], cwd=tmp, capture_output=True, text=True)
            tag = subprocess.run([*u, "podman", "tag", "localhost/benchstack/py:latest", bench_stack.IMAGE], cwd=tmp,
                                 capture_output=True, text=True)
            podman_ok = load.returncode == 0 and tag.returncode == 0
            results["start: podman run --rm (rootless)"] = timed(
                [*u, "podman", "run", "--rm", "--network", "none", bench_stack.IMAGE, "true"], args.runs, tmp) \
                if podman_ok else {"error": (load.stderr + tag.stderr).strip()[-200:]}

        results["stack: envtool (root)"] = bench_stack.measure([*et_root, "up", "-d"], [*et_root, "down"],
                                                               args.stack_runs, tmp, root_env)
        results["stack: envtool (rootless)"] = bench_stack.measure([*et_user, "up", "-d"], [*et_user, "down"],
                                                                   args.stack_runs, tmp)
        pc = str(Path(sys.executable).parent / "podman-compose")
        if podman_ok and os.path.exists(pc):
            cmd = [*u, pc, "-p", "benchstack", "-f", "compose.yaml"]
            results["stack: podman-compose (rootless)"] = bench_stack.measure([*cmd, "up", "-d"], [*cmd, "down"],
                                                                              args.stack_runs, tmp)
        versions = {"podman": subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.strip(),
                    "pasta": "passt " + subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "passt"],
                                                       capture_output=True, text=True).stdout.strip()}
    finally:
        subprocess.run([*u, sys.executable, "-m", "envtool", "-C", tmp, "down"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    out = {"figure": "rootless", "user": args.user, "results": results, "versions": versions,
           "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(out, indent=2))
    if args.write:
        write_section(Path(args.write), out)


def write_section(path: Path, out: dict) -> None:
    from report import replace_section

    lines = [f"Measured {out['date']} as the ordinary user `{out['user']}` ({out['versions']['podman']}, "
             f"{out['versions']['pasta']}); envtool as root beside it. Medians (min–max).", "",
             "| figure | tool | median | min–max |", "|---|---|---:|---:|"]
    for name, r in out["results"].items():
        figure, _, tool = name.partition(": ")
        if "error" in r:
            lines.append(f"| {figure} | {tool} | failed: {r['error']} | |")
        elif "median_ms" in r:
            lines.append(f"| {figure} | {tool} | {r['median_ms']:.0f} ms | {r['min_ms']:.0f}–{r['max_ms']:.0f} |")
        else:
            ready = r["ready_s"]
            lines.append(f"| {figure}: up -d until the port answers | {tool} | {ready['median']:.2f} s | "
                         f"{ready['min']:.2f}–{ready['max']:.2f} |")
            down = r["down_s"]
            lines.append(f"| {figure}: down | {tool} | {down['median']:.2f} s | {down['min']:.2f}–{down['max']:.2f} |")
    replace_section(path, "rootless", lines)


if __name__ == "__main__":
    main()
