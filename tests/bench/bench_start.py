"""Container start latency: envtool against runc, crun, podman and docker on the same rootfs.

    .venv/bin/python tests/bench/bench_start.py [--runs 30] [--write docs/benchmarks.md]

Every runtime runs /bin/true from the same single-layer image (Debian bookworm minbase + python3,
built by envtool).  runc and crun get an OCI bundle whose root is that layer's directory (read-only);
podman gets it with --rootfs and --network none; docker gets it through `docker import` (dockerd
must be running: run_all.py starts one).  envtool is measured twice: the CLI end to end
(`envtool run --rm IMG /bin/true`, Python start-up included; and by recipe name in the project
directory, as users type it) and the runtime's own part (start → exit → cleanup in-process, as the
supervisor runs it).  The machine's hybrid cgroup layout makes crun
refuse to start ("cgroups in hybrid mode not supported"), so crun and podman's default (crun) run in
a mount namespace where the empty cgroup2 mount is unmounted; podman also gets low --ulimit values
because this host lacks CAP_SYS_RESOURCE.  Peers that cannot run are reported as such, not skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

ROOT = os.environ.get("ENVTOOL_ROOT", "/var/tmp/envtool-test")
UNIFIED = "/sys/fs/cgroup/unified"
DOCKER_IMAGE = "envtool-bench-py:latest"


def build_image() -> str:
    env = {**os.environ, "ENVTOOL_ROOT": ROOT}
    out = subprocess.run([sys.executable, "-m", "envtool", "-C", str(REPO / "tests/data/images"), "build", "py",
                          "--json", "--progress", "quiet"], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]["digest"]


def timed(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> dict[str, object]:
    samples, error = [], None
    for _ in range(runs + 2):                       # two warm-up runs
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            error = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            break
        samples.append(dt)
    if error:
        return {"error": error[0]}
    return summary(samples[2:])


def summary(samples: list[float]) -> dict[str, object]:
    ms = [s * 1000 for s in samples]
    return {"median_ms": round(statistics.median(ms), 1), "min_ms": round(min(ms), 1),
            "max_ms": round(max(ms), 1), "runs": len(ms)}


def envtool_inprocess(digest: str, runs: int) -> dict[str, object]:
    from envtool._util.linux import DEFAULT_CAPABILITIES
    from envtool.image.store import Store
    from envtool.runtime import launcher
    from envtool.runtime.cgroups import detect
    from envtool.runtime.config import ContainerConfig

    store = Store(ROOT)
    dirs = store.unpack(store.image(digest))
    mgr = detect()
    samples = []
    for i in range(runs + 2):
        t0 = time.perf_counter()
        cfg = ContainerConfig(name=f"bench-{os.getpid()}-{i}", layers=tuple(dirs),
                              state_dir=str(store.containers_dir / f"bench-{os.getpid()}-{i}"), argv=("/bin/true",),
                              hostname="bench", capabilities=frozenset(DEFAULT_CAPABILITIES),
                              cgroup_parent="envtool/bench")
        c = launcher.start(cfg, cgroups=mgr, seccomp_cache=str(store.cache_dir / "seccomp"))
        info = launcher.reap(c)
        launcher.cleanup(c)
        assert info is not None and info.code == 0
        samples.append(time.perf_counter() - t0)
    return summary(samples[2:])


def oci_bundle(rootfs: str, directory: str) -> str:
    subprocess.run(["runc", "spec"], cwd=directory, check=True)
    path = os.path.join(directory, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["root"] = {"path": rootfs, "readonly": True}
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    with open(path, "w") as f:
        json.dump(cfg, f)
    return directory


def without_unified(cmd: list[str]) -> list[str]:
    """Run cmd in a private mount namespace without the controller-less cgroup2 mount."""
    if not os.path.ismount(UNIFIED):
        return cmd
    quoted = " ".join(f"'{c}'" for c in cmd)
    return ["unshare", "-m", "sh", "-c", f"umount {UNIFIED} && exec {quoted}"]


def version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "not installed"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--write", help="update this markdown file's start-latency section")
    args = ap.parse_args()
    digest = build_image()
    from envtool.image.store import Store

    store = Store(ROOT)
    image = store.image(digest)
    assert len(image.layers) == 1, "the benchmark image must be a single layer"
    rootfs = store.unpack(image)[0]
    env = {**os.environ, "ENVTOOL_ROOT": ROOT}
    results: dict[str, dict[str, object]] = {}
    results["envtool runtime (in-process)"] = envtool_inprocess(digest, args.runs)
    cli = str(Path(sys.executable).parent / "envtool")            # the console script users type
    results["envtool run --rm (CLI)"] = timed([cli, "run", "--rm", digest, "/bin/true"], args.runs, env)
    results["envtool run --rm py (CLI, recipe name in its project dir)"] = timed(
        [cli, "-C", str(REPO / "tests/data/images"), "run", "--rm", "py", "/bin/true"], args.runs, env)
    results["envtool run --rm --no-init (CLI)"] = timed([cli, "run", "--rm", "--no-init", digest, "/bin/true"],
                                                        args.runs, env)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = oci_bundle(rootfs, tmp)
        n = iter(range(10**6))
        if shutil.which("runc"):
            results["runc run"] = timed(["sh", "-c", f"cd {bundle} && exec runc run bench-runc-$$"], args.runs)
        if shutil.which("crun"):
            results["crun run"] = timed(without_unified(["sh", "-c", f"cd {bundle} && exec crun run bench-crun-$$"]),
                                        args.runs)
        del n
    if shutil.which("podman"):
        podman = ["podman", "run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024",
                  "--ulimit", "nproc=1024:1024", "--rootfs", rootfs, "/bin/true"]
        results["podman run --network none (crun)"] = timed(without_unified(podman), args.runs)
        results["podman --runtime runc run --network none"] = timed(
            ["podman", "--runtime", "runc", *podman[1:]], args.runs)
    docker_up = shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    if docker_up and subprocess.run(["docker", "import", str(store.blob_path(image.layers[0].digest)), DOCKER_IMAGE],
                                    capture_output=True).returncode == 0:
        results["docker run --network none"] = timed(
            ["docker", "run", "--rm", "--network", "none", DOCKER_IMAGE, "/bin/true"], args.runs)
    else:
        results["docker run --network none"] = {"error": "no running dockerd (run_all.py starts one)"}
    versions = {"envtool": "0.1.0 (this tree)", "python": platform.python_version(),
                "runc": version(["runc", "--version"]), "crun": version(["crun", "--version"]),
                "podman": version(["podman", "--version"]),
                "docker": version(["docker", "version", "-f", "{{.Server.Version}}"]) if docker_up else "not running",
                "kernel": platform.release()}
    out = {"figure": "container start (/bin/true)", "results": results, "versions": versions,
           "machine": f"{os.cpu_count()} cores, {platform.machine()}", "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(out, indent=2))
    if args.write:
        write_section(Path(args.write), out)


def write_section(path: Path, out: dict) -> None:
    from report import replace_section

    lines = [f"Measured {out['date']} on {out['machine']}, kernel {out['versions']['kernel']}, "
             f"Python {out['versions']['python']}; {next(iter(out['results'].values())).get('runs')} runs each "
             "after 2 warm-ups.", "",
             "| runtime | median | min | max |", "|---|---:|---:|---:|"]
    for name, r in out["results"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | |")
        else:
            lines.append(f"| {name} | {r['median_ms']} ms | {r['min_ms']} ms | {r['max_ms']} ms |")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items() if k != "kernel")]
    replace_section(path, "start-latency", lines)


if __name__ == "__main__":
    main()
