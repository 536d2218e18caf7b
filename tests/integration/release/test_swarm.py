"""`envtool export compose --swarm` on a live Swarm: a single-node swarm of the test's own dockerd (in a
network namespace, see dockerd.py) pulls examples/shop's images, pushed by `envtool push` to a registry
on loopback, and runs the production environment with `docker stack deploy`.  The stack answers on its
published port (nginx → three api replicas by DNS round robin → redis), every task runs exactly the
locked digest, and a changed file gives a new digest that Swarm rolls out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.integration.release import dockerd

pytestmark = [pytest.mark.root, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def swarm(leak_check):
    why = dockerd.missing()
    if why:
        pytest.skip(why)
    d = dockerd.Daemon()
    try:
        why = d.start() or d.swarm_init()
        if why:
            pytest.skip(f"no swarm on this machine: {why}")
        d.start_registry(5000)
        yield d
    finally:
        if d.sock.exists():
            d.docker("stack", "rm", "shop", timeout=60)
        d.stop()


def _envtool(root: str, *args: str, ns: dockerd.Daemon | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "envtool", *args]
    return subprocess.run([*(ns.enter if ns else []), *argv], env={**os.environ, "ENVTOOL_ROOT": root, "NO_COLOR": "1"},
                          capture_output=True, text=True, timeout=900)


def _release(root: str, project: Path, d: dockerd.Daemon) -> dict[str, str]:
    """Build (outside: the mirror is not in the daemon's namespace), push inside, export: the locked
    digests by image."""
    built = _envtool(root, "-C", str(project), "build")     # builds what the store lacks, locks what it built
    assert built.returncode == 0, built.stderr[-2000:]
    pushed = _envtool(root, "-C", str(project), "push", "localhost:5000", "--json", ns=d)
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    exported = _envtool(root, "-C", str(project), "export", "compose", "--swarm", "--env", "production",
                        "--registry", "localhost:5000", "-o", str(project / "stack.yml"))
    assert exported.returncode == 0, exported.stderr
    assert "ignores depends_on" in exported.stderr                       # what has no equivalent is said
    locked = tomllib.loads((project / "envtool.lock").read_text())["images"]
    assert {r["image"]: r["digest"] for r in json.loads(pushed.stdout)} == {k: v["digest"] for k, v in locked.items()}
    return {k: v["digest"] for k, v in locked.items()}


def _get(d: dockerd.Daemon, path: str, want: str, seconds: float = 180) -> list[str]:
    """Bodies of up to 40 requests to the published port, once one of them contains `want`."""
    code = (f"import urllib.request, time, sys\nbodies = []\nend = time.monotonic() + {seconds}\n"
            "while time.monotonic() < end:\n    try:\n"
            f"        b = urllib.request.urlopen('http://127.0.0.1:8080{path}', timeout=3).read().decode()\n"
            f"    except OSError:\n        time.sleep(0.5); continue\n"
            f"    if {want!r} in b:\n        bodies.append(b)\n        if len(bodies) == 40: break\n"
            "    else:\n        time.sleep(0.5)\nprint(json.dumps(bodies))\n")
    out = d.in_ns([sys.executable, "-c", "import json\n" + code], timeout=seconds + 60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _running_images(d: dockerd.Daemon) -> dict[str, set[str]]:
    """Service → the image references its running containers were created from."""
    ids = d.docker("ps", "-q", "--filter", "label=com.docker.stack.namespace=shop").stdout.split()
    out: dict[str, set[str]] = {}
    if ids:
        for c in json.loads(d.docker("inspect", *ids).stdout):
            svc = c["Config"]["Labels"]["com.docker.swarm.service.name"].removeprefix("shop_")
            out.setdefault(svc, set()).add(c["Config"]["Image"])
    return out


def test_swarm_runs_the_locked_digests_and_rolls_a_new_release(swarm, store_root, tmp_path):
    d = swarm
    t0 = time.monotonic()
    lap = lambda what: print(f"swarm test: {what} at {time.monotonic() - t0:.1f} s")  # noqa: E731  (-s shows it)
    project = tmp_path / "shop"
    shutil.copytree(REPO / "examples" / "shop", project, ignore=shutil.ignore_patterns("envtool.lock"))
    digests = _release(store_root, project, d)
    lap("built, pushed, exported")

    deployed = d.docker("stack", "deploy", "-c", str(project / "stack.yml"), "shop", timeout=180)
    assert deployed.returncode == 0, deployed.stderr
    assert "Ignoring unsupported options" not in deployed.stderr, deployed.stderr   # everything written is used
    bodies = _get(d, "/", '"service":"api"')
    assert len(bodies) == 40, d.docker("service", "ps", "--no-trunc", "shop_api").stdout
    lap("the published port answers")
    hosts = {json.loads(b)["host"] for b in bodies}
    assert len(hosts) >= 2, hosts                      # nginx spreads over the replicas Swarm's DNS names

    want = {svc: {f"localhost:5000/shop/{img}@{digests[img]}"} for svc, img in
            (("redis", "cache"), ("api", "py"), ("worker", "py"), ("web", "front"))}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = _running_images(d)
        replicas = d.docker("service", "ls", "--format", "{{.Name}} {{.Replicas}}").stdout.split("\n")
        if running == want and "shop_api 3/3" in replicas:
            break
        time.sleep(1)
    assert running == want and "shop_api 3/3" in replicas, replicas
    for svc in want:                                    # and the service spec pins the same digest
        spec = d.docker("service", "inspect", f"shop_{svc}", "--format",
                        "{{.Spec.TaskTemplate.ContainerSpec.Image}}").stdout.strip()
        assert spec in want[svc]

    lap("every task runs its locked digest")
    # a new release: one file of the front image changes; Swarm rolls web to the new digest
    (project / "static" / "index.html").write_text("<h1>release two</h1>\n")
    new = _release(store_root, project, d)
    assert new["front"] != digests["front"] and new["py"] == digests["py"]
    redeployed = d.docker("stack", "deploy", "-c", str(project / "stack.yml"), "shop", timeout=180)
    assert redeployed.returncode == 0, redeployed.stderr
    assert _get(d, "/static/index.html", "release two")
    lap("the new file is served")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = d.docker("service", "inspect", "shop_web", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}"
                         "{{end}}").stdout.strip()
        running = _running_images(d)
        if state == "completed" and running.get("web") == {f"localhost:5000/shop/front@{new['front']}"}:
            break
        time.sleep(1)
    assert state == "completed"
    assert running["web"] == {f"localhost:5000/shop/front@{new['front']}"}
    assert running["api"] == want["api"]                # unchanged services were left alone
    lap("the update completed")
