"""CLI commands that touch no container: envtool against podman-compose and docker-compose.

    .venv/bin/python tests/bench/bench_cli.py [--runs 30] [--write docs/benchmarks.md]

The 3-service project of bench_stack.py, written both as envtool.toml and compose.yaml, and each
tool asked the same things: its help, to check the file, to print the resolved file, and which
containers run (none: `ps` of a stack that is down), and its images.  docker-compose needs a dockerd:
DOCKER_HOST may name one (run_all.py starts one).  `python -c pass` from the same virtualenv is
the floor for any Python CLI on this machine.  envtool's modules are compiled first (as an install
does), so no run pays for compiling them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_stack import compose_yaml, envtool_toml
from bench_start import summary

REPO = Path(__file__).resolve().parents[2]


def timed(cmd: list[str], runs: int, cwd: str, env: dict[str, str]) -> dict[str, object]:
    samples = []
    for i in range(runs + 2):                      # two warm-up runs
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            return {"error": ((proc.stderr or proc.stdout).strip().splitlines() or [f"exit {proc.returncode}"])[-1][:160]}
        if i >= 2:
            samples.append(dt)
    return summary(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--write")
    args = ap.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "envtool")], check=True,
                   capture_output=True)
    env = {**os.environ, "NO_COLOR": "1", "ENVTOOL_ROOT": os.environ.get("ENVTOOL_ROOT", "/var/tmp/envtool-test")}
    bindir = Path(sys.executable).parent
    et = [str(bindir / "envtool")]
    pc = str(bindir / "podman-compose")
    dc = shutil.which("docker-compose")
    docker_up = bool(shutil.which("docker")) and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    tasks = {
        "help": {"envtool": [*et, "--help"], "podman-compose": [pc, "--help"], "docker-compose": [dc, "--help"]},
        "check the file": {"envtool": [*et, "validate"], "podman-compose": None,
                           "docker-compose": [dc, "config", "--quiet"]},
        "print the resolved file": {"envtool": [*et, "config", "--json"], "podman-compose": [pc, "config"],
                                    "docker-compose": [dc, "config"]},
        "ps (stack down)": {"envtool": [*et, "ps"], "podman-compose": [pc, "ps"],
                            "docker-compose": [dc, "ps"] if docker_up else None},
        "images": {"envtool": [*et, "images"], "podman-compose": [pc, "images"],
                   "docker-compose": [dc, "images"] if docker_up else None},
    }
    results: dict[str, dict[str, object]] = {"python -c pass (floor)": {}}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "envtool.toml").write_text(envtool_toml(3))
        (Path(tmp) / "compose.yaml").write_text(compose_yaml(3))
        results["python -c pass (floor)"]["python"] = timed([sys.executable, "-c", "pass"], args.runs, tmp, env)
        for task, tools in tasks.items():
            results[task] = {}
            for tool, cmd in tools.items():
                if cmd is None or cmd[0] is None or not os.path.exists(cmd[0]):
                    results[task][tool] = {"error": "no such command" if cmd is None else "not installed"}
                    continue
                results[task][tool] = timed(cmd, args.runs, tmp, env)
    out = {"figure": "CLI commands without containers", "results": results, "date": time.strftime("%Y-%m-%d"),
           "runs": args.runs}
    print(json.dumps(out, indent=2))
    if args.write:
        write_section(Path(args.write), out)


def cell(r: dict[str, object]) -> str:
    if "error" in r:
        return f"– ({r['error']})"
    return f"{r['median_ms']} ms ({r['min_ms']}–{r['max_ms']})"


def write_section(path: Path, out: dict) -> None:
    from report import replace_section

    tools = ["envtool", "podman-compose", "docker-compose"]
    floor = out["results"]["python -c pass (floor)"]["python"]
    lines = [f"Measured {out['date']}; medians (min–max) over {out['runs']} runs after 2 warm-ups. "
             f"`python -c pass` in the same virtualenv: {cell(floor)}.", "",
             "| task | " + " | ".join(tools) + " |", "|---|" + "---:|" * len(tools)]
    for task, row in out["results"].items():
        if task.startswith("python"):
            continue
        lines.append(f"| {task} | " + " | ".join(cell(row.get(t, {"error": "not measured"})) for t in tools) + " |")
    replace_section(path, "cli", lines)


if __name__ == "__main__":
    main()
