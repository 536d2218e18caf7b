"""Ordered steps and multi-stage recipes, built for real: a toolchain image builds, a slim image
runs what it copied out of it; a hostile stage cannot hand the build host's files over."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.root


def cli(root, *args, cwd=None):
    env = {**os.environ, "ENVTOOL_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "envtool", *args], env=env, capture_output=True, text=True,
                          cwd=cwd, timeout=600)


PY = '[images.py]\nfrom = "debian:bookworm"\npackages = ["python3"]\n'


def test_ordered_steps_run_in_the_order_written(tmp_path, store_root, py_image, leak_check):
    project = tmp_path / "p"
    (project / "conf").mkdir(parents=True)
    (project / "conf" / "app.conf").write_text("kept\n")
    # a Dockerfile's order: mkdir before COPY, an rm that must not delete what is copied after it
    (project / "envtool.toml").write_text(PY + '''
[images.app]
from = "image:py"
steps = [
  { run = "mkdir -p /etc/app && echo old > /etc/app/stale.conf" },
  { run = "rm -f /etc/app/*.conf && pwd > /where", workdir = "/srv/work" },
  { copy = { src = "conf/app.conf", dst = "/etc/app/" } },
  { run = "cat /etc/app/app.conf >> /where" },
]
''')
    proc = cli(store_root, "-C", str(project), "build", "app", "--progress", "plain")
    assert proc.returncode == 0, proc.stderr
    proc = cli(store_root, "-C", str(project), "run", "--rm", "app", "sh", "-c", "cat /where; ls /etc/app")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["/srv/work", "kept", "app.conf"]


def test_copy_from_another_recipe(tmp_path, store_root, py_image, leak_check):
    project = tmp_path / "p"
    project.mkdir()
    (project / "envtool.toml").write_text(PY + '''
[images.builder]
from = "image:py"
run = ["mkdir -p /out/lib && printf '#!/bin/sh\\necho built-app\\n' > /out/app && chmod 755 /out/app && echo data > /out/lib/x && ln -s lib /out/current"]

[images.slim]
from = "image:py"
copy = [{ from = "builder", src = "/out/app", dst = "/usr/local/bin/" },
        { from = "builder", src = "/out/lib", dst = "/opt/lib", chown = "nobody" },
        { from = "builder", src = "/out/current", dst = "/opt/current" }]
cmd = ["app"]
''')
    proc = cli(store_root, "-C", str(project), "lock", "--progress", "plain")
    assert proc.returncode == 0, proc.stderr
    proc = cli(store_root, "-C", str(project), "run", "--rm", "slim")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "built-app"
    proc = cli(store_root, "-C", str(project), "run", "--rm", "slim", "sh", "-c",
               "stat -c %U /opt/lib/x; cat /opt/current/x; ls /out 2>&1 | head -1")
    assert proc.stdout.split("\n")[:2] == ["nobody", "data"]
    assert "No such file" in proc.stdout          # the toolchain's /out did not come along
    # bound to the lock: the same digest again, from the cache
    proc = cli(store_root, "-C", str(project), "build", "slim", "--json", "--progress", "quiet")
    assert proc.returncode == 0, proc.stderr
    assert '"cached": true' in proc.stdout


def test_copy_from_a_hostile_stage_stays_in_that_image(tmp_path, store_root, py_image, leak_check):
    """The stage's /out is a symlink to an absolute host path (the victim) and its /etc/x is
    `../../../../victim/secret`: both must resolve inside the stage's own root."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "secret").write_text("host-secret\n")
    project = tmp_path / "p"
    project.mkdir()
    (project / "envtool.toml").write_text(PY + f'''
[images.evil]
from = "image:py"
run = ["mkdir -p {victim} && echo image-own > {victim}/secret && ln -s {victim} /out && ln -s ../../../../../../../{victim}/secret /up"]

[images.take]
from = "image:py"
copy = [{{ from = "evil", src = "/out/secret", dst = "/got-out" }},
        {{ from = "evil", src = "/up", dst = "/got-up" }}]
''')
    proc = cli(store_root, "-C", str(project), "build", "take", "--progress", "plain")
    assert proc.returncode == 0, proc.stderr
    proc = cli(store_root, "-C", str(project), "run", "--rm", "take", "cat", "/got-out", "/got-up")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["image-own", "image-own"]
    with open("/proc/self/mounts") as f:
        assert "envtool-stage" not in f.read()


def test_copy_from_errors_name_the_key(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "envtool.toml").write_text(PY + '''
[images.a]
from = "image:py"
copy = [{ from = "b", src = "/x", dst = "/x" }]
[images.b]
from = "image:py"
steps = [{ copy = { from = "a", src = "/y", dst = "/y" } }, { pip = ["flask"] }, { pip = ["redis"] }]
[images.c]
from = "image:py"
steps = [{ copy = { from = "nope", src = "rel", dst = "/y" } }]
''')
    proc = cli(tmp_path / "root", "-C", str(project), "validate")
    assert proc.returncode == 2
    assert "image recipes form a cycle: a -> b -> a" in proc.stderr
    assert "more than one pip step" in proc.stderr
    assert "unknown image recipe 'nope' to copy from" in proc.stderr
    assert "envtool.toml:" in proc.stderr
