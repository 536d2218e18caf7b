"""A store that runs out of space during a build stays consistent: the build fails with a clear
message, every blob left in the store matches its digest, nothing is left in tmp/, and the same
root builds again once there is room."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def small_root(tmp_path, bb_image):
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "envtool-test-full", str(root)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def test_disk_full_during_a_build_leaves_the_store_consistent(tmp_path, small_root, store_root):
    project = tmp_path / "p"
    project.mkdir()
    (project / "big.bin").write_bytes(os.urandom(48 << 20))
    (project / "envtool.toml").write_text(
        '[project]\nname = "full"\n[images.bb]\nfrom = "debian:bookworm"\nvariant = "extract"\n'
        'packages = ["busybox-static"]\ncopy = [{ src = "big.bin", dst = "/big.bin" }]\n')
    env = {**os.environ, "ENVTOOL_ROOT": str(small_root)}

    def build():
        return subprocess.run([sys.executable, "-m", "envtool", "-C", str(project), "build", "--progress", "plain"],
                              env=env, capture_output=True, text=True, timeout=600)

    failed = build()
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert "no space left on device" in failed.stderr.lower(), failed.stderr[-2000:]
    assert "Traceback" not in failed.stderr
    blobs = small_root / "store" / "blobs" / "sha256"
    for blob in blobs.iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob
    json.loads((small_root / "store" / "index.json").read_text())
    assert os.listdir(small_root / "tmp") == []
    assert not [d for d in os.listdir(small_root / "layers") if not (small_root / "layers" / d /
                                                                     ".envtool-complete").exists()]
    (project / "big.bin").write_bytes(os.urandom(1 << 20))
    again = build()
    assert again.returncode == 0, again.stderr[-2000:]
