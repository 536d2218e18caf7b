"""Real builds: Debian bases with mmdebstrap, copy and run layers, determinism, damaged stores,
and hostile images imported from OCI archives."""

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from envtool._util.digest import canonical_json, sha256_bytes

pytestmark = pytest.mark.root
REPO = Path(__file__).resolve().parents[3]


def cli(root, *args, cwd=None):
    env = {**os.environ, "ENVTOOL_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "envtool", *args], env=env, capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def build_json(root, project_dir, *names):
    proc = cli(root, "-C", str(project_dir), "build", *names, "--json", "--progress", "quiet")
    assert proc.returncode == 0, proc.stderr
    return {r["image"]: r for r in json.loads(proc.stdout)}


def test_debian_base_is_bit_identical_in_two_store_roots(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "envtool.toml").write_text('[images.bb]\nfrom = "debian:bookworm"\nvariant = "extract"\n'
                                          'packages = ["busybox-static"]\n')
    a = build_json(tmp_path / "root-a", project, "bb")["bb"]
    b = build_json(tmp_path / "root-b", project, "bb")["bb"]
    assert a["digest"] == b["digest"] and not a["cached"] and not b["cached"]
    assert build_json(tmp_path / "root-a", project, "bb")["bb"]["cached"]


def test_copy_and_run_layers(tmp_path, store_root, py_image, leak_check):
    project = tmp_path / "p"
    (project / "app").mkdir(parents=True)
    (project / "app" / "main.py").write_text("print(open('/built').read().strip(), __import__('os').getuid())\n")
    (project / "app" / "junk.pyc").write_text("x")
    (project / ".envtoolignore").write_text("*.pyc\n")
    (project / "envtool.toml").write_text(
        '[images.py]\nfrom = "debian:bookworm"\npackages = ["python3"]\n'
        '[images.app]\nfrom = "image:py"\ncopy = [{ src = "app", dst = "/srv/app", chown = "nobody" }]\n'
        'run = ["echo built-by-run > /built", "rm -rf /usr/share/doc"]\n'
        'workdir = "/srv/app"\nuser = "nobody"\ncmd = ["python3", "main.py"]\n')
    first = build_json(store_root, project, "app")["app"]
    proc = cli(store_root, "-C", str(project), "run", "app")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["built-by-run", "65534"]
    proc = cli(store_root, "-C", str(project), "run", "app", "sh", "-c",
               "ls /srv/app; stat -c %U /srv/app/main.py; ls /usr/share/doc 2>&1 | head -1")
    assert proc.stdout.split("\n")[:3] == ["main.py", "nobody", "ls: cannot access '/usr/share/doc': No such file or directory"]
    again = build_json(store_root, project, "app")["app"]
    assert again["digest"] == first["digest"] and again["cached"]
    (project / "app" / "main.py").write_text("print('changed')\n")
    assert build_json(store_root, project, "app")["app"]["digest"] != first["digest"]


def test_failing_run_step_names_the_step(tmp_path, store_root, py_image, leak_check):
    project = tmp_path / "p"
    project.mkdir()
    (project / "envtool.toml").write_text('[images.py]\nfrom = "debian:bookworm"\npackages = ["python3"]\n'
                                          '[images.bad]\nfrom = "image:py"\nrun = ["echo oops; exit 3"]\n')
    proc = cli(store_root, "-C", str(project), "build", "bad")
    assert proc.returncode == 1
    assert "`run echo oops; exit 3` failed with exit code 3: oops" in proc.stderr


def test_unknown_package_is_a_clear_error(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "envtool.toml").write_text('[images.x]\nfrom = "debian:bookworm"\nvariant = "extract"\n'
                                          'packages = ["no-such-package-envtool"]\n')
    proc = cli(tmp_path / "root", "-C", str(project), "build")
    assert proc.returncode == 1
    assert "no-such-package-envtool" in proc.stderr and "hint:" in proc.stderr


def test_a_damaged_blob_is_detected_before_use(tmp_path, bb_image):
    root = tmp_path / "root"
    shutil.copytree(os.environ.get("ENVTOOL_TEST_ROOT", "/var/tmp/envtool-test") + "/store", root / "store")
    manifest = json.loads((root / "store/blobs/sha256" / bb_image.split(":")[1]).read_bytes())
    blob = root / "store/blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[5000] ^= 0xFF
    blob.write_bytes(bytes(data))
    proc = cli(root, "run", bb_image, "/bin/busybox", "true")
    assert proc.returncode == 1
    assert "does not match its digest" in proc.stderr
    assert not list((root / "layers").glob("*/rootfs"))


def oci_archive(path, layers: list[bytes], config: dict):
    """A minimal OCI image layout archive around the given uncompressed layer tars."""
    blobs = {}

    def add(data):
        d = sha256_bytes(data)
        blobs[d] = data
        return {"digest": d, "size": len(data)}

    diff_ids = [sha256_bytes(layer) for layer in layers]
    cfg = add(canonical_json({"architecture": "amd64", "os": "linux", "config": config,
                              "rootfs": {"type": "layers", "diff_ids": diff_ids}}))
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **add(layer)}
                           for layer in layers]}
    man = add(canonical_json(manifest))
    index = {"schemaVersion": 2, "manifests": [{"mediaType": manifest["mediaType"], **man}]}
    with tarfile.open(path, "w") as tar:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                           ("index.json", json.dumps(index).encode())] + \
                [(f"blobs/sha256/{d.split(':')[1]}", b) for d, b in blobs.items()]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))


def hostile_layer(links) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, target in links:
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tar.addfile(ti)
    return buf.getvalue()


def test_hostile_symlinks_in_an_image_cannot_redirect_mounts(tmp_path, store_root, bb_image, leak_check):
    """An image whose /etc and /proc are absolute symlinks to a host directory: envtool's mounts
    (hosts file, proc, volumes) must land inside the container's root, never in that directory."""
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    bb = json.loads((Path(store_root) / "store/blobs/sha256" / bb_image.split(":")[1]).read_bytes())
    base = (Path(store_root) / "store/blobs/sha256" / bb["layers"][0]["digest"].split(":")[1]).read_bytes()
    archive = tmp_path / "hostile.tar"
    oci_archive(archive, [base, hostile_layer([("etc", str(host_dir)), ("var", "../../../.." + str(host_dir))])],
                {"Cmd": ["/bin/busybox", "true"]})
    vol = tmp_path / "vol"
    vol.mkdir()
    proc = cli(store_root, "run", "-v", f"{vol}:/etc/data", "-v", f"{vol}:/var/data", f"oci-archive:{archive}",
               "/bin/busybox", "sh", "-c",
               "/bin/busybox cat /etc/hostname; /bin/busybox ls /proc | /bin/busybox grep -c '^[0-9]'")
    assert proc.returncode == 0, proc.stderr
    assert list(host_dir.iterdir()) == [] and list(vol.iterdir()) == []
    assert proc.stdout.split("\n")[1] == "4"           # tini, sh, ls, grep: the container's own /proc


def test_hostile_proc_symlink_stays_inside(tmp_path, store_root, bb_image, leak_check):
    """/proc and /etc pointing at the same host path: proc is mounted inside the root, the start
    fails cleanly when /etc/hostname cannot be created there, and the host path stays untouched."""
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    bb = json.loads((Path(store_root) / "store/blobs/sha256" / bb_image.split(":")[1]).read_bytes())
    base = (Path(store_root) / "store/blobs/sha256" / bb["layers"][0]["digest"].split(":")[1]).read_bytes()
    archive = tmp_path / "hostile.tar"
    oci_archive(archive, [base, hostile_layer([("etc", str(host_dir)), ("proc", str(host_dir))])],
                {"Cmd": ["/bin/busybox", "true"]})
    proc = cli(store_root, "run", f"oci-archive:{archive}")
    assert proc.returncode == 1 and "rootfs:" in proc.stderr and "Traceback" not in proc.stderr
    assert list(host_dir.iterdir()) == []
