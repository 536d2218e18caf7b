"""Hostile layers: nothing lands outside the root, dangerous entries are refused or neutralised."""

import io
import os
import tarfile

import pytest

from envtool._util.digest import sha256_bytes
from envtool.errors import StoreError
from envtool.image.extract import HostileLayer, extract_layer
from envtool.image.oci import LAYER_TAR
from envtool.image.store import Layer

UID, GID = os.getuid(), os.getgid()


def tar_of(*entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in entries:
            ti = tarfile.TarInfo(name)
            ti.uid, ti.gid = UID, GID
            data = None
            if kind == "file":
                data = extra.get("data", b"x")
                ti.size = len(data)
                ti.mode = extra.get("mode", 0o644)
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, extra["to"]
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, extra["to"]
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 8, 0
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def extract(tmp_path, data):
    digest = sha256_bytes(data)
    staging = tmp_path / "staging"
    staging.mkdir()
    report = extract_layer(io.BytesIO(data), staging, Layer(digest, digest, len(data), LAYER_TAR))
    return staging / "rootfs", report


@pytest.fixture
def outside(tmp_path):
    d = tmp_path / "outside"
    d.mkdir()
    return d


def test_dotdot_is_refused(tmp_path):
    with pytest.raises(HostileLayer, match=r"\.\."):
        extract(tmp_path, tar_of(("../evil", "file", {})))


def test_absolute_names_are_made_relative(tmp_path):
    root, report = extract(tmp_path, tar_of(("/etc/evil", "file", {})))
    assert (root / "etc" / "evil").exists() and report.made_relative == 1


def test_absolute_symlink_then_file_stays_inside(tmp_path, outside):
    root, _ = extract(tmp_path, tar_of(("escape", "sym", {"to": str(outside)}), ("escape/pwned", "file", {})))
    assert not (outside / "pwned").exists()
    assert (root / str(outside).lstrip("/") / "pwned").exists()


def test_relative_symlink_climbing_out_stays_inside(tmp_path, outside):
    root, _ = extract(tmp_path, tar_of(("d", "dir", {}), ("d/up", "sym", {"to": "../../../../../.."}),
                                       ("d/up/pwned", "file", {})))
    assert not (outside.parent / "pwned").exists()
    assert (root / "pwned").exists()


def test_symlink_entries_are_kept_as_links(tmp_path, outside):
    root, _ = extract(tmp_path, tar_of(("link", "sym", {"to": "/etc/shadow"})))
    assert os.readlink(root / "link") == "/etc/shadow"


def test_hardlink_to_host_file_is_refused(tmp_path, outside):
    (outside / "secret").write_text("s")
    with pytest.raises(HostileLayer, match="hard link"):
        extract(tmp_path, tar_of(("steal", "hard", {"to": str(outside / "secret")})))
    with pytest.raises(HostileLayer):
        extract(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path,
                tar_of(("steal", "hard", {"to": "../outside/secret"})))


def test_hardlink_within_layer(tmp_path):
    root, _ = extract(tmp_path, tar_of(("a", "file", {"data": b"hi"}), ("b", "hard", {"to": "a"})))
    assert os.stat(root / "a").st_ino == os.stat(root / "b").st_ino


def test_device_nodes_are_skipped(tmp_path):
    root, report = extract(tmp_path, tar_of(("dev/sda", "chr", {})))
    assert not (root / "dev" / "sda").exists() and report.skipped_devices == ["dev/sda"]


def test_setuid_bits_are_cleared(tmp_path):
    root, report = extract(tmp_path, tar_of(("bin/su", "file", {"mode": 0o4755})))
    assert os.stat(root / "bin" / "su").st_mode & 0o7777 == 0o755
    assert report.cleared_setid == ["bin/su"]


def test_damaged_blob_is_detected(tmp_path):
    data = tar_of(("a", "file", {"data": b"hello"}))
    digest = sha256_bytes(data)
    tampered = data.replace(b"hello", b"jello")
    staging = tmp_path / "s"
    staging.mkdir()
    with pytest.raises(StoreError, match="does not match its digest"):
        extract_layer(io.BytesIO(tampered), staging, Layer(digest, digest, len(data), LAYER_TAR))


@pytest.mark.root
def test_whiteouts_become_overlay_whiteouts(tmp_path):
    root, _ = extract(tmp_path, tar_of(("d", "dir", {}), ("d/.wh.gone", "file", {"data": b""}),
                                       ("o", "dir", {}), ("o/.wh..wh..opq", "file", {"data": b""})))
    st = os.lstat(root / "d" / "gone")
    assert os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0
    assert os.getxattr(root / "o", "trusted.overlay.opaque") == b"y"


def test_dot_and_dotdot_whiteouts_are_skipped(tmp_path):
    """`.wh..` would make the parent itself a whiteout (rmtree one level above the target)."""
    root, report = extract(tmp_path, tar_of(("d", "dir", {}), ("d/keep", "file", {}), ("d/.wh..", "file", {"data": b""}),
                                            ("d/.wh..wh..plnk", "file", {"data": b""})))
    assert (root / "d" / "keep").exists()
    assert sorted(report.skipped_whiteouts) == ["d/.wh..", "d/.wh..wh..plnk"]


def test_only_user_and_file_capability_xattrs_are_applied(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        ti = tarfile.TarInfo("f")
        ti.size, ti.uid, ti.gid = 1, UID, GID
        ti.pax_headers = {"SCHILY.xattr.user.ok": "1", "SCHILY.xattr.trusted.overlay.redirect": "/etc",
                          "SCHILY.xattr.security.evm": "x"}
        tar.addfile(ti, io.BytesIO(b"x"))
    root, _ = extract(tmp_path, buf.getvalue())
    names = os.listxattr(root / "f")
    assert "user.ok" in names
    assert not [n for n in names if n.startswith(("trusted.", "security.evm"))]
