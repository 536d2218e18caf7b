"""Host conditions: cgroup v2 placement, not root, missing tools — each a clear message."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.root


@pytest.mark.skipif(not os.path.exists("/sys/fs/cgroup/unified/cgroup.procs")
                    and not os.path.exists("/sys/fs/cgroup/cgroup.controllers"), reason="no cgroup2 mounted")
def test_cgroup_v2_placement_and_cleanup(envtool, py_image, monkeypatch):
    """On this hybrid host cgroup2 has no controllers, but placement, the cgroup namespace and
    removal are the same code as on a pure v2 host."""
    proc = subprocess.run([sys.executable, "-m", "envtool", "run", py_image, "cat", "/proc/self/cgroup"],
                          env={**os.environ, "ENVTOOL_CGROUP": "v2", "ENVTOOL_ROOT": os.environ["ENVTOOL_ROOT"]},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "0::/\n" in proc.stdout              # the container's cgroup is the root of its cgroup namespace
    for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        assert not os.path.exists(os.path.join(root, "envtool", "run"))


def test_not_root_without_a_subordinate_range_is_a_clear_error(envtool_env, py_image, tmp_path):
    """An ordinary user runs rootless (tests/integration/rootless); one without subordinate ids is
    told how to get them, in one line, before anything is created."""
    if subprocess.run(["which", "setpriv"], capture_output=True).returncode != 0:
        pytest.skip("setpriv (util-linux) is not installed")
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                           "envtool", "run", py_image, "true"], env={**envtool_env, "HOME": str(tmp_path)},
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "no subordinate id range" in proc.stderr and "usermod --add-subuids" in proc.stderr
    assert "Traceback" not in proc.stderr and not os.path.exists("/tmp/envtool-65534")


def test_missing_mmdebstrap_is_a_clear_error(envtool_env, tmp_path):
    (tmp_path / "envtool.toml").write_text('[images.x]\nfrom = "debian:bookworm"\n')
    proc = subprocess.run([sys.executable, "-m", "envtool", "-C", str(tmp_path), "build"],
                          env={**envtool_env, "PATH": "/nonexistent", "ENVTOOL_ROOT": str(tmp_path / "root")},
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "mmdebstrap is not installed" in proc.stderr and "apt-get install -y mmdebstrap" in proc.stderr
