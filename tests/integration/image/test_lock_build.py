"""envtool.lock: a lock reproduces every digest in an empty store; edits without re-locking and
missing locks in strict mode are refused with exit 2, naming the image."""

import os
import subprocess
import sys
import tomllib

import pytest

pytestmark = pytest.mark.root

RECIPES = """[images.bb]
from = "debian:bookworm"
variant = "extract"
packages = ["busybox-static"]

[images.app]
from = "image:bb"
copy = [{ src = "app", dst = "/app" }]
cmd = ["/bin/busybox", "cat", "/app/hello.txt"]
"""


def cli(root, project, *args):
    env = {**os.environ, "ENVTOOL_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "envtool", "-C", str(project), *args], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def project(tmp_path):
    p = tmp_path / "proj"
    (p / "app").mkdir(parents=True)
    (p / "app" / "hello.txt").write_text("hello\n")
    (p / "envtool.toml").write_text(RECIPES)
    return p


def test_lock_then_build_in_an_empty_root_reproduces_every_digest(tmp_path, project):
    proc = cli(tmp_path / "root-a", project, "lock")
    assert proc.returncode == 0, proc.stderr
    lock = tomllib.loads((project / "envtool.lock").read_text())
    assert set(lock["images"]) == {"app", "bb"}
    assert lock["images"]["app"]["copy"][0]["src"] == "app"
    proc = cli(tmp_path / "root-b", project, "build", "--locked", "--json")
    assert proc.returncode == 0, proc.stderr
    import json

    built = {r["image"]: r["digest"] for r in json.loads(proc.stdout)}
    assert built == {name: entry["digest"] for name, entry in lock["images"].items()}


def test_an_edited_recipe_is_refused_until_relocked(tmp_path, project):
    assert cli(tmp_path / "root", project, "lock").returncode == 0
    (project / "envtool.toml").write_text(RECIPES.replace('cmd = ["/bin/busybox", "cat"', 'cmd = ["/bin/busybox", "head"'))
    proc = cli(tmp_path / "root", project, "build")
    assert proc.returncode == 2
    assert "image 'app': its recipe changed since envtool.lock was written" in proc.stderr
    assert "envtool lock --update app" in proc.stderr
    assert cli(tmp_path / "root", project, "lock", "--update", "app").returncode == 0
    assert cli(tmp_path / "root", project, "build").returncode == 0


def test_strict_mode_needs_a_lock(tmp_path, project):
    proc = cli(tmp_path / "root", project, "build", "--locked")
    assert proc.returncode == 2 and "no envtool.lock" in proc.stderr
    proc = cli(tmp_path / "root", project, "build")
    assert proc.returncode == 0 and "wrote" in proc.stderr and (project / "envtool.lock").exists()


def test_changed_copied_files_update_the_lock_in_dev_and_fail_when_locked(tmp_path, project):
    assert cli(tmp_path / "root", project, "lock").returncode == 0
    (project / "app" / "hello.txt").write_text("changed\n")
    proc = cli(tmp_path / "root", project, "build", "--locked")
    assert proc.returncode == 1 and "`copy app → /app` gave a different layer" in proc.stderr
    proc = cli(tmp_path / "root", project, "build")
    assert proc.returncode == 0 and "updated" in proc.stderr
