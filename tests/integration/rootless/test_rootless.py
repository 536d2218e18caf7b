"""Rootless, for real: an ordinary user (created by .ci/setup with a subordinate id range) runs
the example stack with no sudo — build, up, its published port from the host, exec, hot reload,
down — and what that leaves behind is checked from the host as root.  Bad input gets one line."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from envtool.runtime import rootless

pytestmark = [pytest.mark.root, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
USER = os.environ.get("ENVTOOL_ROOTLESS_USER", "envtool-test")


@pytest.fixture(scope="module")
def user() -> pwd.struct_passwd:
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        pytest.skip(f"no user {USER} (.ci/setup creates it)")
    if rootless.subid_range("/etc/subuid", USER, pw.pw_uid) is None:
        pytest.skip(f"{USER} has no subordinate id range (.ci/setup gives it one)")
    if not shutil.which("pasta"):
        pytest.skip("pasta is not installed (.ci/setup installs passt)")
    return pw


def as_user(pw: pwd.struct_passwd, *args: str, cwd: str | Path = "/", timeout: float = 900,
            path: str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin") -> subprocess.CompletedProcess[str]:
    env = ["env", "-i", f"HOME={pw.pw_dir}", f"USER={pw.pw_name}", f"PATH={path}", "LANG=C.UTF-8"]
    return subprocess.run(["runuser", "-u", pw.pw_name, "--", *env, sys.executable, "-m", "envtool", *args],
                          cwd=str(cwd), capture_output=True, text=True, timeout=timeout)


def user_pids(pw: pwd.struct_passwd) -> dict[int, str]:
    out = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                st = os.stat(f"/proc/{p}")
                with open(f"/proc/{p}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if st.st_uid == pw.pw_uid and stat.rsplit(")", 1)[1].split()[0] != "Z":
                out[int(p)] = stat.split(" ", 2)[1]
    return out


def end_user_processes(pw: pwd.struct_passwd, before: set[int]) -> None:
    """What the test started as the user and left (only on failure): ended by pid."""
    for pid in set(user_pids(pw)) - before:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(port: int, path: str = "/") -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def wait_for(fn, within: float = 60.0):
    deadline = time.monotonic() + within
    while True:
        try:
            value = fn()
            if value:
                return value
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting after {within:.0f}s")
        time.sleep(0.2)


def host_uid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Uid:")).split()[1])


@pytest.fixture
def project(user, tmp_path_factory):
    d = Path(tempfile.mkdtemp(prefix="envtool-rootless-", dir="/tmp"))
    shutil.copytree(REPO / "examples" / "shop", d / "shop")
    port = free_port()
    toml = d / "shop" / "envtool.toml"
    toml.write_text(toml.read_text().replace('"8080:80"', f'"{port}:80"'))
    subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(d)], check=True)
    os.chmod(d, 0o755)
    yield d / "shop", port
    shutil.rmtree(d, ignore_errors=True)


def test_the_example_stack_without_root(user, project, store_root):
    shop, port = project
    before = set(user_pids(user))
    sub_start = rootless.subid_range("/etc/subuid", USER, user.pw_uid)[0]
    try:
        up = as_user(user, "up", "-d", "--watch", "--progress", "plain", cwd=shop)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
        store = Path(user.pw_dir) / ".local/share/envtool"
        assert os.stat(store).st_mode & 0o777 == 0o700                 # one user's stacks are invisible to another's
        run_dir = Path(f"/tmp/envtool-{user.pw_uid}")
        assert os.stat(run_dir).st_mode & 0o777 == 0o700
        session = json.loads((run_dir / "session.json").read_text())

        # the published port, bound on the host by pasta, reaches nginx → api → redis
        first = wait_for(lambda: get_json(port))
        assert first["service"] == "api" and first["visits"] >= 1

        # identity: container root is the user, other container users come from the subordinate range
        rows = {r["service"]: r for r in json.loads(as_user(user, "ps", "--json", cwd=shop).stdout)}
        assert host_uid(rows["redis"]["pid"]) == user.pw_uid                # its init runs as container root
        app = as_user(user, "exec", "api", "id", "-u", cwd=shop)
        assert app.returncode == 0, app.stderr
        app_uid = int(app.stdout.strip())
        with open(f"/proc/{rows['api']['pid']}/task/{rows['api']['pid']}/children") as f:
            server = int(f.read().split()[0])          # under init: the app's own process
        assert host_uid(server) == sub_start + app_uid - 1, (server, app_uid)
        nginx = as_user(user, "exec", "web", "sh", "-c", "id -u www-data", cwd=shop)
        assert nginx.returncode == 0 and nginx.stdout.strip() == "33", nginx.stderr

        # hot reload: an edit to the api's source is synced and the api restarted
        src = shop / "api" / "app.py"
        src.write_text(src.read_text().replace('service="api"', 'service="api-reloaded"'))
        wait_for(lambda: get_json(port)["service"] == "api-reloaded", within=90)

        # the same recipes built by root give the same digests
        root_copy = Path(tempfile.mkdtemp(prefix="envtool-rootful-", dir="/tmp"))
        try:
            shutil.copytree(REPO / "examples" / "shop", root_copy / "shop")
            (root_copy / "shop" / "envtool.toml").write_text((shop / "envtool.toml").read_text())
            shutil.copy(src, root_copy / "shop" / "api" / "app.py")
            lock = subprocess.run([sys.executable, "-m", "envtool", "-C", str(root_copy / "shop"), "lock",
                                   "--progress", "plain"], env={**os.environ, "ENVTOOL_ROOT": store_root},
                                  capture_output=True, text=True, timeout=900)
            assert lock.returncode == 0, lock.stderr[-2000:]
            ours = as_user(user, "lock", "--progress", "plain", cwd=shop)
            assert ours.returncode == 0, ours.stderr[-2000:]
            digests = re.compile(r'digest = "(sha256:[0-9a-f]{64})"')
            rootful = digests.findall((root_copy / "shop" / "envtool.lock").read_text())
            rootless_ = digests.findall((shop / "envtool.lock").read_text())
            assert rootful and rootful == rootless_
        finally:
            shutil.rmtree(root_copy, ignore_errors=True)

        down = as_user(user, "down", cwd=shop)
        assert down.returncode == 0, down.stderr
        # nothing left: no process (containers, supervisor, watcher, pasta, the session), no port
        wait_for(lambda: not (set(user_pids(user)) - before), within=15)
        left = user_pids(user)                              # (a zombie waiting for init is no process)
        assert not {session["pause"], session["pasta"], session["daemon"]} & set(left), left
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
        assert not (run_dir / "session.json").exists()
        with open("/proc/self/mounts") as f:
            assert str(store) not in f.read()
    finally:
        as_user(user, "down", cwd=shop, timeout=120)
        end_user_processes(user, before)


def test_bad_input_gets_one_line_and_leaves_nothing(user, project):
    shop, _ = project
    nobody = pwd.getpwnam("nobody")
    home = tempfile.mkdtemp(prefix="envtool-nobody-", dir="/tmp")
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    try:
        run = subprocess.run(["runuser", "-u", "nobody", "--", "env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin",
                              sys.executable, "-m", "envtool", "run", "--rm", "py", "true"],
                             cwd=shop, capture_output=True, text=True, timeout=60)
        assert run.returncode == 1 and "no subordinate id range" in run.stderr and "usermod" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) <= 2
        assert not os.path.exists(f"/tmp/envtool-{nobody.pw_uid}") and os.listdir(home) == []
    finally:
        shutil.rmtree(home, ignore_errors=True)

    # no pasta on PATH (newuidmap is)
    bin_dir = Path(tempfile.mkdtemp(prefix="envtool-bin-", dir="/tmp"))
    try:
        os.chmod(bin_dir, 0o755)
        for tool in ("newuidmap", "newgidmap"):
            os.symlink(shutil.which(tool), bin_dir / tool)
        assert not (Path(f"/tmp/envtool-{user.pw_uid}") / "session.json").exists()
        no_pasta = as_user(user, "run", "--rm", "py", "true", cwd=shop, path=str(bin_dir), timeout=60)
        assert no_pasta.returncode == 1 and "pasta is not installed" in no_pasta.stderr, no_pasta.stderr
        assert "apt-get install passt" in no_pasta.stderr
    finally:
        shutil.rmtree(bin_dir, ignore_errors=True)

    # a port only root may bind: refused before anything starts, naming the service
    toml = shop / "envtool.toml"
    toml.write_text(re.sub(r'"\d+:80"', '"80:80"', toml.read_text()))
    before = set(user_pids(user))
    try:
        low = as_user(user, "up", "-d", cwd=shop, timeout=900)
        assert low.returncode == 2 and "'web' publishes host port 80" in low.stderr, low.stderr[-2000:]
        assert "Traceback" not in low.stderr
        assert json.loads(as_user(user, "ps", "--json", cwd=shop).stdout) == []
    finally:
        as_user(user, "down", cwd=shop, timeout=120)
        wait_for(lambda: not (set(user_pids(user)) - before), within=15)
        end_user_processes(user, before)
