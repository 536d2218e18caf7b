"""Hole 10: a FIFO at /etc/passwd in an image blocked the single-threaded supervisor (up, ps, down
hung); a FIFO at the watcher's temporary name hung the watcher, and a symlink into /proc stopped it."""

import os
import time

import pytest

pytestmark = pytest.mark.root


def wait_for(fn, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.1)
    return False


def test_a_fifo_at_etc_passwd_fails_the_start_and_names_the_container(stack):
    stack.write("""
[images.fifo]
from = "image:py"
run = ["rm /etc/passwd && mkfifo /etc/passwd"]

[services.app]
image = "fifo"
command = ["sleep", "600"]
""")
    t0 = time.monotonic()
    up = stack.cli("up", "-d", timeout=120)
    assert up.returncode != 0
    assert f"{stack.name}-app-1" in up.stderr and "FIFO" in up.stderr, up.stderr
    assert time.monotonic() - t0 < 60
    assert stack.cli("ps", timeout=20).returncode == 0            # the supervisor still answers
    assert stack.cli("down", timeout=30).returncode == 0


def test_the_watcher_survives_fifos_and_proc_symlinks_in_the_container(stack):
    app = stack.dir / "app"
    (app / "sub").mkdir(parents=True)
    (app / "main.py").write_text("v1\n")
    (app / "sub" / "x.txt").write_text("v1\n")
    stack.write("""
[services.s]
image = "py"
command = ["sh", "-c", "mkdir -p /app && mkfifo /app/.main.py.envtool-sync && ln -s /proc/self/root/etc /app/sub && sleep 600"]
init = true
[services.s.develop]
watch = [{ path = "app", action = "sync", target = "/app" }]
""")
    stack.cli("up", "-d", "--watch", check=True)
    assert wait_for(lambda: stack.cli("exec", "s", "test", "-L", "/app/sub").returncode == 0)
    (app / "sub" / "x.txt").write_text("v2\n")         # into the /proc symlink: refused, logged
    time.sleep(1)
    (app / "main.py").write_text("v2\n")               # beside the FIFO at the old temporary name
    assert wait_for(lambda: stack.cli("exec", "s", "cat", "/app/main.py").stdout == "v2\n"), \
        stack.cli("logs", "watch").stdout
    watch = stack.cli("logs", "watch").stdout
    assert "sub" in watch and "s:" in watch, watch            # the refused sync is named
    down = stack.cli("down", timeout=30)
    assert down.returncode == 0, down.stderr
    assert os.path.exists(app / "main.py")
