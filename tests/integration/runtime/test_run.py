"""`envtool run` end to end: real namespaces, overlayfs, cgroups, capabilities and seccomp,
checked from inside the container by tests/probe/probe.py."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.root

DOCKER_DEFAULT_CAPS = "00000000a80425fb"


def test_container_sees_its_own_world(probe):
    r = probe()
    assert r["pid"] == 2                                # tini is PID 1, the command its child
    assert r["hostname"] != socket.gethostname()
    assert r["pids"] == [1, 2]                          # only the container's processes
    assert r["CapEff"] == DOCKER_DEFAULT_CAPS and r["CapBnd"] == DOCKER_DEFAULT_CAPS
    assert r["NoNewPrivs"] == "1" and r["Seccomp"] == "2"
    assert r["links"] == ["lo"]
    assert r["fds"] == [0, 1, 2, 3]                    # 3 is os.listdir's own fd: nothing leaked
    mounts = {m[1]: m for m in r["mounts"]}
    assert mounts["/"][2] == "overlay"
    assert "ro" in mounts["/sys"][3].split(",") and "ro" in mounts["/proc/sys"][3].split(",")
    assert mounts["/dev/pts"][2] == "devpts"


def test_without_init_the_command_is_pid_1(probe):
    assert probe(opts=("--no-init",))["pid"] == 1


def test_kernel_interfaces_are_locked_down(probe):
    r = probe("mount", "unshare_user", "write_proc_sys", "write_sys", "keys", "sethostname", "clone3", "thread")
    assert r["mount"] == "EPERM"
    assert r["unshare_user"] == "EPERM"
    assert r["write_proc_sys"] == "EROFS"
    assert r["write_sys"] in ("EROFS", "EACCES")
    assert r["keys"] == "content:"                     # /dev/null bound over /proc/keys
    assert r["sethostname"] == "EPERM"
    assert r["clone3"] == "ENOSYS"                     # so glibc falls back to clone(2) ...
    assert r["thread"] == "ok"                         # ... and threads work


def test_net_raw_follows_capabilities(probe):
    assert probe("raw_socket")["raw_socket"] == "ok"
    assert probe("raw_socket", opts=("--cap-drop", "NET_RAW"))["raw_socket"] == "EPERM"


def test_cap_add_extends_the_bounding_set(probe):
    r = probe(opts=("--cap-add", "SYS_ADMIN"))
    assert int(r["CapEff"], 16) & (1 << 21)
    assert probe("mount", opts=("--cap-add", "SYS_ADMIN"))["mount"] == "ok"


def test_user_env_workdir(probe):
    r = probe(opts=("-u", "65534:65534", "-e", "GREETING=hi", "-w", "/tmp"))
    assert (r["uid"], r["gid"]) == (65534, 65534)
    assert r["CapEff"] == "0000000000000000" and r["CapBnd"] == DOCKER_DEFAULT_CAPS
    assert r["env"]["GREETING"] == "hi" and r["cwd"] == "/tmp"
    assert r["env"]["PATH"].startswith("/usr/local/sbin")


def test_read_only_rootfs(probe):
    assert probe("write_root", opts=("--read-only",))["write_root"] == "EROFS"
    assert probe("write_root")["write_root"] == "ok"


def test_exit_code_and_output_are_passed_through(envtool, py_image):
    proc = envtool("run", py_image, "python3", "-c", "import sys; print('out'); sys.stderr.write('err'); sys.exit(7)")
    assert proc.returncode == 7
    assert proc.stdout == "out\n" and "err" in proc.stderr


def test_missing_command_is_a_clear_error(envtool, py_image):
    proc = envtool("run", py_image, "no-such-binary")
    assert proc.returncode == 127
    assert "executable file not found in $PATH: no-such-binary" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_oom_kill_is_reported(envtool, py_image):
    proc = envtool("run", "--memory", "64M", py_image, "python3", "-c", "b = bytearray(200 * 1024 * 1024)")
    assert proc.returncode == 137
    assert "OOM-killed" in proc.stderr and "64.0 MiB" in proc.stderr


def test_pids_limit(envtool, py_image):
    code = ("import os, errno\nn = 0\ntry:\n    for _ in range(50):\n        if os.fork() == 0:\n"
            "            import time; time.sleep(5); os._exit(0)\n        n += 1\nexcept OSError as e:\n"
            "    print('limited', n, errno.errorcode[e.errno])\n")
    proc = envtool("run", "--pids", "10", py_image, "python3", "-c", code)
    assert "limited" in proc.stdout and "EAGAIN" in proc.stdout


def test_bind_mounts_and_read_only(envtool, py_image, tmp_path):
    (tmp_path / "in.txt").write_text("from host\n")
    proc = envtool("run", "-v", f"{tmp_path}:/data:ro", py_image, "sh", "-c",
                   "cat /data/in.txt; echo x > /data/new 2>/dev/null || echo denied")
    assert proc.stdout.split("\n")[:2] == ["from host", "denied"]
    proc = envtool("run", "-v", f"{tmp_path}:/data", py_image, "sh", "-c", "echo written > /data/new")
    assert proc.returncode == 0 and (tmp_path / "new").read_text() == "written\n"


def test_sigterm_stops_the_container_within_the_grace_period(envtool_env, py_image, leak_check):
    with subprocess.Popen([sys.executable, "-m", "envtool", "run", "--stop-timeout", "2", py_image,
                           "python3", "-c", "import time; print('up', flush=True); time.sleep(60)"],
                          env=envtool_env, stdout=subprocess.PIPE, text=True) as p:
        _stop_and_check(p, expect_code=128 + signal.SIGTERM, within=(0, 1.5))


def _stop_and_check(p, expect_code, within):
    try:
        assert p.stdout.readline() == "up\n"
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == expect_code
        assert within[0] <= time.monotonic() - t0 < within[1]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(envtool_env, py_image, leak_check):
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True);"
            "time.sleep(60)")
    with subprocess.Popen([sys.executable, "-m", "envtool", "run", "--stop-timeout", "1", py_image,
                           "python3", "-c", code], env=envtool_env, stdout=subprocess.PIPE, text=True) as p:
        _stop_and_check(p, expect_code=137, within=(0.9, 5))


def test_tty(envtool_env, py_image, leak_check):
    from tests.integration.helpers import run_in_pty

    code, out = run_in_pty([sys.executable, "-m", "envtool", "run", "-t", py_image, "python3", "-c",
                            "import os, sys; print('tty', os.isatty(0), os.ttyname(1))"], envtool_env)
    assert code == 0, out
    assert b"tty True /dev/pts/0" in out


def test_nothing_is_left_behind(envtool, py_image, store_root):
    before = {p for p in os.listdir("/proc") if p.isdigit()}
    containers = set(os.listdir(os.path.join(store_root, "containers")))    # a stack another test runs
    for _ in range(3):
        assert envtool("run", py_image, "true").returncode == 0
    with open("/proc/self/mounts") as f:
        assert not [line for line in f if store_root in line]
    assert set(os.listdir(os.path.join(store_root, "containers"))) <= containers
    for base in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
        assert not os.path.exists(os.path.join(base, "envtool", "run")), base
    time.sleep(0.2)
    lingering = {p for p in os.listdir("/proc") if p.isdigit()} - before
    for p in lingering:
        try:
            with open(f"/proc/{p}/cmdline") as f:
                assert "tini" not in f.read()
        except (FileNotFoundError, ProcessLookupError):
            pass


def test_cve_2019_5736_style_overwrite_of_the_init_binary_fails(envtool, py_image):
    """A root process in the container tries to write the host's init binary through /proc/1/exe."""
    import hashlib

    from envtool.runtime.launcher import find_init

    def digest():
        with open(find_init(), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    before = digest()
    code = ("import errno\nfor path in ('/proc/1/exe', '/dev/init'):\n    try:\n"
            "        open(path, 'r+b').write(b'pwned')\n        print(path, 'written')\n"
            "    except OSError as e:\n        print(path, errno.errorcode[e.errno])\n")
    proc = envtool("run", py_image, "python3", "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "written" not in proc.stdout
    assert digest() == before


def test_cve_2024_21626_style_no_host_fd_or_cwd_leaks(probe):
    """Nothing of the launcher's is open in the container, and its cwd is inside the container."""
    r = probe(opts=("-w", "/tmp"))
    assert r["fds"] == [0, 1, 2, 3]                    # 3 is the listing's own directory fd
    assert r["cwd"] == "/tmp"
