"""`envtool save` writes an OCI archive that podman loads and runs; `envtool gc` removes only what
nothing references."""

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.root


def cli(root, *args, cwd=None):
    env = {**os.environ, "ENVTOOL_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "envtool", *args], env=env, capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture
def project(tmp_path):
    p = tmp_path / "proj"
    p.mkdir()
    (p / "envtool.toml").write_text('[project]\nname = "savetest"\n[images.bb]\nfrom = "debian:bookworm"\n'
                                    'variant = "extract"\npackages = ["busybox-static"]\n'
                                    'cmd = ["/bin/busybox", "echo", "same program"]\n')
    return p


def test_saved_archive_runs_in_envtool_and_podman(tmp_path, project):
    root = tmp_path / "root"
    archive = tmp_path / "bb.tar"
    proc = cli(root, "-C", str(project), "save", "bb", "-o", str(archive))
    assert proc.returncode == 0, proc.stderr
    assert "localhost/savetest/bb:latest" in proc.stderr
    again = cli(tmp_path / "other-root", "run", f"oci-archive:{archive}")
    assert again.returncode == 0 and again.stdout == "same program\n", again.stderr
    if not shutil.which("podman"):
        pytest.skip("podman is not installed (apt-get install -y podman) — the envtool side passed")
    load = subprocess.run(["podman", "load", "-i", str(archive)], capture_output=True, text=True)
    assert load.returncode == 0, load.stderr
    try:
        run = subprocess.run(["podman", "--runtime", "runc", "run", "--rm", "--network", "none", "--ulimit",
                              "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "localhost/savetest/bb:latest"],
                             capture_output=True, text=True)
        if run.returncode != 0 and "OCI" in run.stderr:
            pytest.skip(f"podman cannot run containers on this host: {run.stderr.strip()[-200:]}")
        assert run.stdout == "same program\n", run.stderr
    finally:
        subprocess.run(["podman", "rmi", "-f", "localhost/savetest/bb:latest"], capture_output=True)


def test_gc_keeps_tagged_images_and_removes_the_rest(tmp_path, project):
    root = tmp_path / "root"
    assert cli(root, "-C", str(project), "build").returncode == 0
    # an untagged blob that nothing references
    stray = root / "store" / "blobs" / "sha256" / ("0" * 64)
    stray.write_bytes(b"stray")
    proc = cli(root, "gc")
    assert proc.returncode == 0 and "removed 1 blobs" in proc.stderr
    assert not stray.exists()
    run = cli(root, "-C", str(project), "run", "bb")
    assert run.returncode == 0 and run.stdout == "same program\n"
