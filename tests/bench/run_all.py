"""Run every benchmark in one go and write docs/benchmarks.md (figures, peers from the same run,
machine and versions) plus one PNG plot per figure in docs/img/.

    .venv/bin/python tests/bench/run_all.py [--quick]

Needs root, the test images (run the test suite once), and for the peers: runc, crun, podman,
podman-compose (PyPI), docker.io + docker-compose (Debian; a dockerd of the run's own is started
here and stopped by pid afterwards, see Dockerd), matplotlib (PyPI): tests/bench/setup installs them. A missing peer is reported in its
table, never skipped silently.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DOC = REPO / "docs" / "benchmarks.md"
IMG = REPO / "docs" / "img"


CACHE = Path("/var/tmp/envtool-bench")
ROOTLESS_USER = "envtool-test"


def has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
REUSE = False


def bench(script: str, *args: str) -> dict:
    """Run one benchmark (it rewrites its own section); its result is kept so that --reuse can
    redraw the plots after a later benchmark failed, without measuring again."""
    key = CACHE / ("_".join([script, *args]).replace("-", "").replace(" ", "") + ".json")
    if REUSE and key.exists():
        return json.loads(key.read_text())
    print(f"== {script} {' '.join(args)}", file=sys.stderr, flush=True)
    proc = subprocess.run([sys.executable, str(HERE / script), *args, "--write", str(DOC)], capture_output=True,
                          text=True, cwd=HERE)
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout[proc.stdout.index("{") if proc.stdout.lstrip().startswith("{") else
                                 proc.stdout.index("["):])
    CACHE.mkdir(parents=True, exist_ok=True)
    key.write_text(json.dumps(out))
    return out


class Dockerd:
    """A dockerd of the run's own, for the peers' rows: its own data root, exec root, pidfile and
    socket in a temporary directory (DOCKER_HOST points the benchmarks at it), no default bridge and
    no iptables rules of its own (compose makes its project's bridge and removes it at `down`;
    published ports go through docker-proxy), stopped by pid and its directory removed afterwards.
    A dockerd already answering on DOCKER_HOST or the default socket is used as it is."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.base: Path | None = None

    def start(self) -> None:
        import tempfile

        if not shutil.which("dockerd") or subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
            return
        self.base = Path(tempfile.mkdtemp(prefix="envtool-bench-docker."))
        sock = f"unix://{self.base / 'docker.sock'}"
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", str(self.base / "data"), "--exec-root", str(self.base / "exec"),
             "--pidfile", str(self.base / "docker.pid"), "-H", sock, "--bridge=none", "--iptables=false"],
            stdout=subprocess.DEVNULL, stderr=open(self.base / "dockerd.log", "wb"))
        os.environ["DOCKER_HOST"] = sock
        for _ in range(300):
            if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        print(f"dockerd did not start: see {self.base / 'dockerd.log'}", file=sys.stderr)
        self.stop()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            os.environ.pop("DOCKER_HOST", None)
        if self.base is not None:
            subprocess.run(["umount", "-R", "-l", str(self.base / "data")], capture_output=True)
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None


def machine() -> list[str]:
    def first(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "not installed"

    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return [f"- Machine: {os.cpu_count()} × {cpu}, {mem:.0f} GiB RAM, Linux {platform.release()}, "
            f"Python {platform.python_version()}",
            f"- Peers: {first(['runc', '--version'])}; {first(['crun', '--version'])}; "
            f"{first(['podman', '--version'])}; {first(['docker', '--version'])}; "
            f"{first(['docker-compose', 'version', '--short'])} (docker-compose); "
            f"podman-compose {first([str(Path(sys.executable).parent / 'podman-compose'), '--version'])}",
            f"- Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `.venv/bin/python tests/bench/run_all.py`"]


def plot_bars(name: str, title: str, unit: str, rows: list[tuple[str, float, float, float]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMG.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(rows)))
    labels = [r[0] for r in rows]
    med = [r[1] for r in rows]
    err = [[r[1] - r[2] for r in rows], [r[3] - r[1] for r in rows]]
    colors = ["#2a7ab0" if label.startswith("envtool") else "#9a9a9a" for label in labels]
    ax.barh(labels, med, xerr=err, color=colors, capsize=3)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title)
    for i, r in enumerate(rows):
        ax.text(r[3], i, f"  {r[1]:.3g}", va="center", fontsize=8)
    ax.set_xlim(0, max(r[3] for r in rows) * 1.15)
    fig.tight_layout()
    path = IMG / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"![{title}](img/{name}.png)"


def plot_scale(rows: list[dict]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMG.mkdir(parents=True, exist_ok=True)
    n = [r["containers"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(n, [r["up_s"] for r in rows], "o-", label="up -d")
    a.plot(n, [r["down_s"] for r in rows], "s-", label="down")
    a.set_xlabel("containers")
    a.set_ylabel("seconds")
    a.legend()
    a.set_title("time")
    b.plot(n, [r["supervisor_rss_mib"] for r in rows], "o-", label="supervisor RSS (MiB)")
    b.plot(n, [r["used_mib"] for r in rows], "s-", label="host memory used (MiB)")
    b.set_xlabel("containers")
    b.legend()
    b.set_title("memory")
    fig.tight_layout()
    fig.savefig(IMG / "scale.png", dpi=110)
    plt.close(fig)
    return "![scale](img/scale.png)"


def plot_cli(out: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMG.mkdir(parents=True, exist_ok=True)
    tasks = [t for t in out["results"] if not t.startswith("python")]
    tools = ["envtool", "podman-compose", "docker-compose"]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / len(tools)
    for i, tool in enumerate(tools):
        med = [out["results"][t].get(tool, {}).get("median_ms", 0) for t in tasks]
        ax.bar([x + i * width for x in range(len(tasks))], med, width, label=tool,
               color=["#2a7ab0", "#9a9a9a", "#5a5a5a"][i])
    floor = out["results"]["python -c pass (floor)"]["python"]["median_ms"]
    ax.axhline(floor, color="#c04040", lw=1, ls="--", label="python -c pass")
    ax.set_xticks([x + width for x in range(len(tasks))], tasks)
    ax.set_ylabel("ms (median; 0 = not offered)")
    ax.set_title("CLI commands without containers")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(IMG / "cli.png", dpi=110)
    plt.close(fig)
    return "![CLI commands without containers](img/cli.png)"


def stats_rows(results: dict, key: str) -> list[tuple[str, float, float, float]]:
    rows = []
    for name, r in results.items():
        if isinstance(r, dict) and key in r and isinstance(r[key], dict):
            rows.append((name, r[key]["median"], r[key]["min"], r[key]["max"]))
    return rows


def build_times(warm_runs: int) -> dict:
    """examples/shop from its lock: once into an empty root (cold), then again (warm)."""
    import statistics
    import tempfile

    shop = REPO / "examples" / "shop"
    base = {**os.environ, "NO_COLOR": "1"}
    subprocess.run([sys.executable, "-m", "envtool", "-C", str(shop), "build"], env=base, check=True,
                   capture_output=True)                      # writes envtool.lock if there is none
    with tempfile.TemporaryDirectory(dir="/var/tmp") as root:
        env = {**base, "ENVTOOL_ROOT": root}
        cmd = [sys.executable, "-m", "envtool", "-C", str(shop), "build", "--locked", "--progress", "quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        cold = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"cold build failed:\n{proc.stderr[-3000:]}")
        warm = []
        for _ in range(warm_runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            warm.append(time.perf_counter() - t0)
    return {"cold_s": round(cold, 1), "warm_s": {"median": round(statistics.median(warm), 2),
                                                 "min": round(min(warm), 2), "max": round(max(warm), 2)}}


def main() -> None:
    from report import replace_section

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer runs (a smoke test of the benchmarks)")
    ap.add_argument("--reuse", action="store_true", help="take the results of benchmarks that already ran "
                                                         "(in /var/tmp/envtool-bench) instead of measuring again")
    args = ap.parse_args()
    global REUSE
    REUSE = args.reuse
    runs = ["--runs", "5" if args.quick else "30"]
    stack_runs = ["--runs", "3" if args.quick else "10"]
    plots: dict[str, str] = {}
    # as an install does: no CLI run below pays for compiling envtool's modules
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "envtool")], check=True, capture_output=True)
    dockerd = Dockerd()
    dockerd.start()
    try:
        start = bench("bench_start.py", *runs)
        plots["start"] = plot_bars("start", "container start: run /bin/true", "ms", [
            (k, v["median_ms"], v["min_ms"], v["max_ms"]) for k, v in start["results"].items() if "median_ms" in v])
        cli = bench("bench_cli.py", *runs)
        plots["cli"] = plot_cli(cli)
        for n in (3, 10):
            out = bench("bench_stack.py", *stack_runs, "--services", str(n))
            fl = out["results"].get("floor", {}).get("floor_s")
            plots[f"stack-{n}"] = plot_bars(f"stack-{n}", f"{n}-service stack: up until the port answers", "s",
                                            stats_rows(out["results"], "ready_s")
                                            + ([("floor (services' own + container starts)", fl, fl, fl)] if fl else []))
        bench("bench_update.py", "--changes", "3" if args.quick else "5")
    finally:
        dockerd.stop()
    scale = bench("bench_scale.py")
    plots["scale"] = plot_scale(scale)
    # the rootless figures, and the network table's rootless rows (rootless podman's published port
    # runs the image bench_rootless.py loads), by .ci/setup's ordinary user when there is one
    rootless = ["--rootless", ROOTLESS_USER] if has_user(ROOTLESS_USER) else []
    if rootless:
        bench("bench_rootless.py", "--user", ROOTLESS_USER, "--runs", "5" if args.quick else "20",
              "--stack-runs", "3" if args.quick else "5")
    net = bench("bench_net.py", "--runs", "3" if args.quick else "5", *rootless)
    bench("bench_netsetup.py", "--runs", "10" if args.quick else "30")
    plots["network"] = plot_bars("network", "TCP throughput", "MiB/s", stats_rows(net["results"], "mib_s"))
    watch = bench("bench_watch.py", "--edits", "5" if args.quick else "20")
    plots["watch"] = plot_bars("watch", "hot reload: save → change visible", "ms", [
        (k, v["median_ms"], v["min_ms"], v["max_ms"]) for k, v in watch.items()
        if isinstance(v, dict) and "median_ms" in v])
    builds = build_times(5)
    w = builds["warm_s"]
    replace_section(DOC, "build", [
        f"Measured {time.strftime('%Y-%m-%d')}: cold {builds['cold_s']} s; warm {w['median']} s "
        f"({w['min']}–{w['max']}) over 5 runs (target: under 1 s)."])
    plots["build"] = plot_bars("build", "examples/shop build", "s", [
        ("envtool build, cold (empty store)", builds["cold_s"], builds["cold_s"], builds["cold_s"]),
        ("envtool build, warm", w["median"], w["min"], w["max"])])
    replace_section(DOC, "machine", machine())
    replace_section(DOC, "plots", [f"### {k}\n\n{v}\n" for k, v in plots.items()])
    print(f"wrote {DOC} and {len(plots)} plots in {IMG}", file=sys.stderr)


if __name__ == "__main__":
    main()
