"""Deterministic layer tars: sorted entries, fixed mtime, numeric owners, no user/group names.

The same input tree always gives the same bytes, so the same digest (apko's rule; tested).
Layers are stored uncompressed: the blob digest is the diff_id, independent of any zlib version.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from typing import IO

from envtool._util.ignore import walk_sorted
from envtool._util.record import dataclass

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True)
class Owner:
    uid: int = 0
    gid: int = 0


def _info(name: str, st: os.stat_result | None, epoch: int, owner: Owner | None) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mtime = epoch
    ti.uname = ti.gname = ""
    if st is not None:
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = (owner.uid, owner.gid) if owner else (st.st_uid, st.st_gid)
    return ti


class LayerWriter:
    """Collects entries, then writes them sorted by name."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.entries: dict[str, tuple[tarfile.TarInfo, str | None]] = {}

    def add_dir(self, name: str, mode: int = 0o755, owner: Owner = Owner(), st: os.stat_result | None = None
                ) -> None:
        ti = _info(name, st, self.epoch, owner if st is None else owner)
        ti.type = tarfile.DIRTYPE
        if st is None:
            ti.mode, ti.uid, ti.gid = mode, owner.uid, owner.gid
        self.entries[name] = (ti, None)

    def add_path(self, name: str, path: str, owner: Owner | None = None, mode: int | None = None,
                 hardlinks: dict[tuple[int, int], str] | None = None) -> None:
        st = os.lstat(path)
        ti = _info(name, st, self.epoch, owner)
        source = None
        if stat.S_ISDIR(st.st_mode):
            ti.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(st.st_mode):
            ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if hardlinks is not None and st.st_nlink > 1 and key in hardlinks:
                ti.type, ti.linkname = tarfile.LNKTYPE, hardlinks[key]
            else:
                if hardlinks is not None and st.st_nlink > 1:
                    hardlinks[key] = name
                ti.type, ti.size, source = tarfile.REGTYPE, st.st_size, path
                if mode is not None:
                    ti.mode = mode
        elif stat.S_ISFIFO(st.st_mode):
            ti.type = tarfile.FIFOTYPE
        else:
            return  # sockets and devices never go into a layer
        xattrs = _xattrs(path) if not stat.S_ISLNK(st.st_mode) else {}
        if xattrs:
            ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in sorted(xattrs.items())}
        self.entries[name] = (ti, source)

    def add_whiteout(self, name: str) -> None:
        parent, _, base = name.rpartition("/")
        wh = f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base
        ti = _info(wh, None, self.epoch, None)
        ti.mode = 0o644
        self.entries[wh] = (ti, None)

    def write(self, out: IO[bytes]) -> None:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.entries, key=_sort_key):
                ti, source = self.entries[name]
                if source is not None:
                    with open(source, "rb") as f:
                        tar.addfile(ti, f)
                else:
                    tar.addfile(ti, io.BytesIO(b"") if ti.isreg() else None)


def _sort_key(name: str) -> list[str]:
    return name.split("/")


def _xattrs(path: str) -> dict[str, str]:
    out = {}
    try:
        for key in os.listxattr(path, follow_symlinks=False):
            if key.startswith(("security.capability", "user.")):
                out[key] = os.getxattr(path, key, follow_symlinks=False).decode("utf-8", "surrogateescape")
    except OSError:
        pass
    return out


# ---- copy layers -------------------------------------------------------------------------------
def add_copy(w: LayerWriter, src: str, dst: str, owner: Owner, mode: int | None, patterns: list[str],
             base: str | None = None, name: str | None = None) -> None:
    """`copy = [{src, dst}]`: a directory's contents go under dst; a file goes to dst, or into dst
    under its own name (`name`, else src's) when dst ends with '/', as Docker's COPY does."""
    into = dst.endswith("/")
    dst = dst.rstrip("/") if dst != "/" else ""
    parts = [p for p in dst.split("/") if p]
    is_file = not os.path.isdir(src)
    if is_file and into:
        parts.append(name or os.path.basename(src.rstrip("/")))
    for i in range(1, len(parts) + (0 if is_file else 1)):
        w.add_dir("/".join(parts[:i]), owner=Owner() if i < len(parts) else owner)
    if not is_file:
        links: dict[tuple[int, int], str] = {}
        for rel, full in walk_sorted(src, patterns, base):
            w.add_path("/".join(parts + rel.split(os.sep)), full, owner, mode, links)
    else:
        w.add_path("/".join(parts), src, owner, mode)


# ---- diffs of an overlay upper dir ----------------------------------------------------------------
def add_upper_dir(w: LayerWriter, upper: str) -> None:
    """An overlayfs upper dir → OCI layer entries: 0/0 char devices become .wh. files, opaque
    directories get .wh..wh..opq."""
    links: dict[tuple[int, int], str] = {}
    for rel, full in walk_sorted(upper, []):
        name = rel.replace(os.sep, "/")
        st = os.lstat(full)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            w.add_whiteout(name)
            continue
        w.add_path(name, full, hardlinks=links)
        if stat.S_ISDIR(st.st_mode):
            try:
                if os.getxattr(full, "trusted.overlay.opaque", follow_symlinks=False) == b"y":
                    ti = tarfile.TarInfo(f"{name}/{OPAQUE}")
                    ti.mtime, ti.mode = w.epoch, 0o644
                    w.entries[ti.name] = (ti, None)
            except OSError:
                pass
