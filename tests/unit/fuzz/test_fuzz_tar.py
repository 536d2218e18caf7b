"""Property: any layer — random member names (absolute, `..`, deep), types (files, directories,
symlinks and hard links anywhere, devices, FIFOs, whiteouts) and modes (setuid) — either unpacks
with everything inside the root or is refused with an EnvtoolError; nothing outside the root is
ever created or changed, and no other exception escapes."""

from __future__ import annotations

import io
import os
import stat
import tarfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envtool._util.digest import sha256_bytes
from envtool.errors import EnvtoolError
from envtool.image.extract import extract_layer
from envtool.image.oci import LAYER_TAR
from envtool.image.store import Layer

parts = st.sampled_from(["a", "b", "..", ".", "etc", "passwd", ".wh.a", ".wh..wh..opq", "outside", "x y"])
member_names = st.builds(lambda lead, ps: lead + "/".join(ps), st.sampled_from(["", "/", "./", "../"]),
                         st.lists(parts, min_size=1, max_size=4))
targets = st.one_of(member_names, st.sampled_from(["/", "/etc/passwd", "../../outside", "OUTSIDE", "a/../.."]))
member = st.tuples(member_names, st.sampled_from(["file", "dir", "sym", "hard", "chr", "fifo"]), targets,
                   st.sampled_from([0o644, 0o755, 0o4755, 0o2755, 0o000]))


def _tar(members, outside: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, target, mode in members:
            ti = tarfile.TarInfo(name)
            ti.mode, ti.uid, ti.gid = mode, os.getuid(), os.getgid()
            data = None
            target = target.replace("OUTSIDE", outside)
            if kind == "file":
                data = b"payload"
                ti.size = len(data)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, target
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, target
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
            else:
                ti.type = tarfile.FIFOTYPE
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _tree(path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st_ = os.lstat(p)
            out[p] = (st_.st_mode, st_.st_size)
    return out


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(member, min_size=1, max_size=8))
def test_any_layer_stays_inside_its_root_or_is_refused(tmp_path, members):
    work = tmp_path / f"w{len(os.listdir(tmp_path))}"
    outside = work / "outside"
    outside.mkdir(parents=True)
    (outside / "passwd").write_text("host file\n")
    staging = work / "staging"
    staging.mkdir()
    before = _tree(outside)
    data = _tar(members, str(outside))
    digest = sha256_bytes(data)
    try:
        extract_layer(io.BytesIO(data), staging, Layer(digest, digest, len(data), LAYER_TAR))
    except EnvtoolError:
        pass
    assert _tree(outside) == before
    assert (outside / "passwd").read_text() == "host file\n"
    assert sorted(os.listdir(work)) == ["outside", "staging"]
    for dirpath, _, filenames in os.walk(staging):
        for n in filenames:
            st_ = os.lstat(os.path.join(dirpath, n))
            assert not (st_.st_mode & (stat.S_ISUID | stat.S_ISGID)) or not stat.S_ISREG(st_.st_mode)
            assert not stat.S_ISCHR(st_.st_mode) or st_.st_rdev == 0          # only whiteouts
