"""Hole 2: a bind source swapped for a symlink was followed on restart; hole 6: read-only and nodev
were not recursive, so a mount under a bind source stayed writable and device-capable."""

import json
import os
import subprocess
import time

import pytest

from .conftest import arm

pytestmark = pytest.mark.root


def test_a_bind_source_swapped_for_a_symlink_is_not_followed_on_restart(stack, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (stack.dir / "data").mkdir()
    stack.write(f"""
[services.app]
image = "py"
command = ["python3", "/attack/swap_bind.py", "{victim}"]
volumes = ["./data:/data", "./:/app", "{arm(stack.dir)}"]
restart = "always"
""")
    up = stack.cli("up", "-d")          # the attacker exits on purpose (its restart runs the attack)
    assert up.returncode in (0, 1) and "Traceback" not in up.stderr, up.stderr
    deadline = time.monotonic() + 20
    while not (stack.dir / "swapped").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert os.path.islink(stack.dir / "data"), "the attack did not get to swap the source"
    time.sleep(3)                                       # restarts, with back-off
    assert not (victim / "pwned").exists(), "the restart mounted the symlink's target"
    log = stack.cli("logs", "app").stdout + stack.supervisor_log(60)
    assert "symlink" in log, log


def test_mounts_under_a_bind_source_are_read_only_and_nodev_too(stack):
    src = stack.dir / "src"
    sub = src / "sub"
    sub.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "victim-tmpfs", str(sub)], check=True)
    try:
        stack.write("""
[services.app]
image = "py"
command = ["sleep", "600"]
volumes = ["./src:/data:ro"]
""")
        stack.cli("up", "-d", check=True)
        script = ("import os, json\n"
                  "r = {}\n"
                  "for what, fn in (('write', lambda: open('/data/sub/x', 'w').close()),\n"
                  "                 ('mknod', lambda: os.mknod('/data/sub/fuse', 0o20600, os.makedev(10, 229)))):\n"
                  "    try: fn(); r[what] = 'ok'\n"
                  "    except OSError as e: r[what] = e.strerror\n"
                  "print(json.dumps(r))\n")
        out = stack.cli("exec", "app", "python3", "-c", script, check=True).stdout
        r = json.loads(out)
        assert r["write"] != "ok", "a tmpfs under a read-only bind source was writable"
        assert r["mknod"] != "ok", "a device node could be made under a bind source"
        assert not (sub / "x").exists()
    finally:
        stack.cli("down")
        subprocess.run(["umount", str(sub)], check=False)


def test_device_nodes_are_refused_by_the_device_cgroup(tmp_path):
    """cgroup v1 `devices`: a process in a container's cgroup cannot open a device outside the
    allow-list even on a dev-capable filesystem (nodev is the second guard, tested above)."""
    from envtool.runtime.cgroups import detect
    from envtool.runtime.cgroups.v1 import V1Manager
    from envtool.runtime.config import Limits

    with open("/proc/self/mounts") as f:
        host_has_it = any(line.split()[2] == "cgroup" and "devices" in line.split()[3].split(",") for line in f)
    mgr = detect()
    if not host_has_it or not isinstance(mgr, V1Manager):
        pytest.skip("no cgroup v1 devices controller in use on this host (cgroup v2: nodev is the guard)")
    assert "devices" in mgr.mounts, "the host has a devices controller and envtool does not use it"
    devdir = tmp_path / "dev"
    devdir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "victim-dev", str(devdir)], check=True)
    cg = mgr.create(f"envtool/test/devices-{os.getpid()}", Limits())
    try:
        os.mknod(devdir / "fuse", 0o20600, os.makedev(10, 229))     # /dev/fuse: harmless to open
        os.mknod(devdir / "null", 0o20666, os.makedev(1, 3))
        pid = os.fork()
        if pid == 0:
            code = 4
            try:
                for p in cg.procs_files():
                    with open(p, "w") as f:
                        f.write("0")
                code = 0
                try:
                    os.close(os.open(devdir / "fuse", os.O_RDWR))
                    code |= 1                        # opened: the allow-list did not hold
                except PermissionError:
                    pass
                try:
                    os.close(os.open(devdir / "null", os.O_RDWR))
                except OSError:
                    code |= 2                        # /dev/null must stay usable
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        assert code & 1 == 0, "a device outside the allow-list was opened"
        assert code & 2 == 0, "/dev/null was refused"
        assert code == 0
    finally:
        cg.remove()
        subprocess.run(["umount", str(devdir)], check=False)
