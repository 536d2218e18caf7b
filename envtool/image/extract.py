"""Safe layer extraction.

Every path is resolved inside the layer root with openat2(RESOLVE_IN_ROOT), so neither `..`, nor an
absolute symlink, nor a symlink planted earlier in the same tar can make a later entry land
outside.  On top of that:
- `..` components: the layer is refused (no legitimate image needs them);
- absolute member names: made relative (as Docker does);
- device nodes: skipped (a container gets its own /dev); FIFOs are kept;
- setuid / setgid bits: cleared (containers run with no_new_privs anyway);
- hard links: must name an earlier entry of the same layer, resolved inside the root;
- OCI whiteouts (.wh.NAME, .wh..wh..opq) become overlayfs whiteouts and opaque directories.
The blob digest and the diff_id are checked while reading: a damaged blob is never used.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import stat
import tarfile
from collections import OrderedDict
from pathlib import Path
from typing import IO, Any

from envtool._util.record import dataclass, field
from envtool.errors import StoreError, SyscallError
from envtool.runtime.syscalls import O_PATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, mkdirs_in_root, openat2

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"


class HostileLayer(StoreError):
    code = "layer-hostile"


@dataclass
class ExtractReport:
    files: int = 0
    skipped_devices: list[str] = field(default_factory=list)
    cleared_setid: list[str] = field(default_factory=list)
    skipped_whiteouts: list[str] = field(default_factory=list)
    made_relative: int = 0


class _Hashing:
    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.h = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.h.update(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return "sha256:" + self.h.hexdigest()


def extract_layer(blob: IO[bytes], staging: Path, layer: Any) -> ExtractReport:
    """Unpack one layer blob into staging/rootfs, verifying blob digest and diff_id."""
    raw = _Hashing(blob)
    compressed = layer.media_type.endswith("gzip")
    inner: Any = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw  # type: ignore[call-overload]
    plain = _Hashing(inner) if compressed else raw
    rootfs = staging / "rootfs"
    rootfs.mkdir(mode=0o755)
    try:
        with tarfile.open(fileobj=plain, mode="r|") as tar:  # type: ignore[call-overload]
            report = extract_tar(tar, rootfs)
    except tarfile.TarError as e:
        raise StoreError(f"layer {layer.digest}: not a valid tar stream: {e}") from None
    except (EOFError, OSError) as e:
        if isinstance(e, SyscallError):
            raise
        raise StoreError(f"layer {layer.digest}: cannot read: {e}") from None
    diff_id = plain.drain()
    digest = raw.drain() if compressed else diff_id
    if digest != layer.digest:
        raise StoreError(f"layer blob {layer.digest} does not match its digest (found {digest}): "
                         "the store is damaged", hint="run `envtool gc` and rebuild or pull the image")
    if diff_id != layer.diff_id:
        raise StoreError(f"layer {layer.digest}: uncompressed digest {diff_id} does not match the "
                         f"image config's diff_id {layer.diff_id}")
    return report


def clean_name(name: str) -> tuple[str, bool]:
    """Member name → relative path inside the root; refuses `..`.  Returns (path, was_absolute)."""
    absolute = name.startswith("/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise HostileLayer(f"layer member {name!r} climbs out of the root with '..'",
                           hint="the image is malformed or hostile; envtool refuses to unpack it")
    return "/".join(parts), absolute


class _Root:
    """Directory fds inside the root, resolved with RESOLVE_IN_ROOT and kept in a small LRU."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.cache: OrderedDict[str, int] = OrderedDict()

    def dir(self, rel: str) -> int:
        if not rel:
            return self.fd
        if rel in self.cache:
            self.cache.move_to_end(rel)
            return self.cache[rel]
        flags = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
        try:
            fd = openat2(self.fd, rel, O_PATH | os.O_DIRECTORY, flags)
        except SyscallError as e:
            if e.errno != errno.ENOENT:
                raise
            fd = openat2(self.fd, mkdirs_in_root(self.fd, rel), O_PATH | os.O_DIRECTORY, flags)
        self.cache[rel] = fd
        if len(self.cache) > 256:
            _, old = self.cache.popitem(last=False)
            os.close(old)
        return fd

    def forget(self, rel: str) -> None:
        for key in [k for k in self.cache if k == rel or k.startswith(rel + "/")]:
            os.close(self.cache.pop(key))

    def close(self) -> None:
        for fd in self.cache.values():
            os.close(fd)
        os.close(self.fd)


def extract_tar(tar: tarfile.TarFile, rootfs: Path) -> ExtractReport:
    report = ExtractReport()
    root = _Root(rootfs)
    dir_times: list[tuple[str, int]] = []
    try:
        for m in tar:
            rel, absolute = clean_name(m.name)
            if not rel:
                continue
            report.made_relative += absolute
            parent, _, name = rel.rpartition("/")
            if name == OPAQUE:
                os.setxattr(f"/proc/self/fd/{root.dir(parent)}", "trusted.overlay.opaque", b"y")
                continue
            if name.startswith(WHITEOUT_PREFIX):
                target = name[len(WHITEOUT_PREFIX):]
                if target in ("", ".", "..") or target.startswith(WHITEOUT_PREFIX):
                    report.skipped_whiteouts.append(rel)    # `.wh..` would whiteout the parent itself;
                    continue                                # `.wh..wh.*` are AUFS internals
                pfd = root.dir(parent)
                _remove(pfd, target, root, f"{parent}/{target}".lstrip("/"))
                os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
                continue
            if m.ischr() or m.isblk():
                report.skipped_devices.append(rel)
                continue
            mode = m.mode & 0o7777
            if mode & 0o6000 and not m.isdir():
                report.cleared_setid.append(rel)
                mode &= ~0o6000
            pfd = root.dir(parent)
            if m.isdir():
                try:
                    st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                    if not stat.S_ISDIR(st.st_mode):
                        _remove(pfd, name, root, rel)
                        os.mkdir(name, 0o700, dir_fd=pfd)
                except FileNotFoundError:
                    os.mkdir(name, 0o700, dir_fd=pfd)
                os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
                os.chmod(name, mode, dir_fd=pfd)
                dir_times.append((rel, int(m.mtime)))
                continue
            _remove(pfd, name, root, rel)
            if m.issym():
                os.symlink(m.linkname, name, dir_fd=pfd)
            elif m.islnk():
                _hardlink(root, m.linkname, pfd, name)
                continue
            elif m.isfifo():
                os.mkfifo(name, mode, dir_fd=pfd)
            elif m.isreg():
                _write_file(tar, m, pfd, name, mode)
            else:
                continue
            os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            if not m.issym():
                os.chmod(name, mode, dir_fd=pfd)
            os.utime(name, (m.mtime, m.mtime), dir_fd=pfd, follow_symlinks=False)
            report.files += 1
        for rel, mtime in reversed(dir_times):
            parent, _, name = rel.rpartition("/")
            try:
                os.utime(name, (mtime, mtime), dir_fd=root.dir(parent), follow_symlinks=False)
            except OSError:
                pass
    finally:
        root.close()
    return report


def _remove(pfd: int, name: str, root: _Root, rel: str) -> None:
    try:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil

        root.forget(rel)
        shutil.rmtree(f"/proc/self/fd/{pfd}/{name}")
    else:
        os.unlink(name, dir_fd=pfd)


def _hardlink(root: _Root, linkname: str, pfd: int, name: str) -> None:
    target, _ = clean_name(linkname)
    tparent, _, tname = target.rpartition("/")
    try:
        os.link(tname, name, src_dir_fd=root.dir(tparent), dst_dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        raise HostileLayer(f"layer member {name!r} is a hard link to {linkname!r}, which the layer does "
                           "not contain") from None


def _write_file(tar: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, name: str, mode: int) -> None:
    src = tar.extractfile(m)
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
    try:
        if src is not None:
            while block := src.read(1 << 20):
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view):]
        for key, value in m.pax_headers.items():
            # user.* and file capabilities only: trusted.overlay.* would be obeyed by overlayfs
            # (redirects, metacopy, opaque), other security.* and trusted.* are the host's business
            if key.startswith("SCHILY.xattr.") and (key.startswith("SCHILY.xattr.user.")
                                                    or key == "SCHILY.xattr.security.capability"):
                try:
                    os.setxattr(fd, key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape"))
                except OSError:
                    pass
    finally:
        os.close(fd)
