"""`envtool run NAME` in a project directory: the recipe is built from envtool.lock as `build NAME`
builds it, and while nothing it was built from changes the next run takes that image without
loading the project (image/recent.py) — and never an image older than the files."""

import subprocess
import sys
import time
import tomllib

import pytest

pytestmark = pytest.mark.root

# bb as tests/data/images has it, so the shared test store has its Debian step cached
RECIPES = """[images.bb]
from = "debian:bookworm"
variant = "extract"
packages = ["busybox-static"]
cmd = ["/bin/busybox", "sh"]

[images.app]
from = "image:bb"
copy = [{ src = "app", dst = "/app" }]
cmd = ["/bin/busybox", "cat", "/app/hello.txt"]
"""


@pytest.fixture
def project(tmp_path):
    p = tmp_path / "proj"
    (p / "app").mkdir(parents=True)
    (p / "app" / "hello.txt").write_text("one\n")
    (p / "envtool.toml").write_text(RECIPES)
    return p


def run_app(envtool_env, project, importtime=False):
    flags = ["-X", "importtime"] if importtime else []
    return subprocess.run([sys.executable, *flags, "-m", "envtool", "-C", str(project), "run", "app"],
                          env=envtool_env, capture_output=True, text=True, timeout=300)


def test_run_by_recipe_name_builds_from_the_lock_then_skips_the_load(envtool_env, project, leak_check):
    proc = run_app(envtool_env, project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "one\n"
    assert "wrote" in proc.stderr and "envtool.lock" in proc.stderr       # built as `build app` builds it
    lock = tomllib.loads((project / "envtool.lock").read_text())
    assert "app" in lock["images"]

    time.sleep(2.1)                       # the copied file just written was too new to record
    assert run_app(envtool_env, project).stdout == "one\n"
    proc = run_app(envtool_env, project, importtime=True)
    assert proc.returncode == 0 and proc.stdout == "one\n", proc.stderr
    assert "pydantic" not in proc.stderr                     # no project load: the recorded build

    (project / "app" / "hello.txt").write_text("two\n")       # same size, within the same second
    assert run_app(envtool_env, project).stdout == "two\n"
    (project / "app" / "hello.txt").write_text("thr\n")
    assert run_app(envtool_env, project).stdout == "thr\n"
    (project / "envtool.toml").write_text(RECIPES.replace('"cat"', '"head"'))
    proc = run_app(envtool_env, project)                    # an edited recipe: the lock says so
    assert proc.returncode == 2 and "envtool lock --update app" in proc.stderr
