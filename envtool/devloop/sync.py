"""Copy changed files into running containers, through the container's own root.

Paths are resolved inside `/proc/<pid>/root` with openat2(RESOLVE_IN_ROOT), so a symlink in the
container cannot redirect a write to the host.  Files are written to a temporary name and renamed
into place, owned by the container's user with the source file's mode.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil

from envtool._util.safe_read import read_regular_fd
from envtool.devloop.rules import FileSync
from envtool.errors import SyscallError
from envtool.runtime.syscalls import O_PATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, mkdirs_in_root, openat2
from envtool.runtime.users import UnknownUser, resolve_user

FLAGS = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS


def _read_in_root(root_fd: int, path: str) -> str:
    """A file of the container's, read without blocking: a FIFO or device there reads as empty."""
    try:
        fd = openat2(root_fd, path.lstrip("/"), os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY, FLAGS)
    except SyscallError:
        return ""
    try:
        return read_regular_fd(fd, path)
    except OSError:
        return ""


def container_owner(root_fd: int, user: str) -> tuple[int, int]:
    try:
        u = resolve_user(user, _read_in_root(root_fd, "/etc/passwd"), _read_in_root(root_fd, "/etc/group"))
    except UnknownUser:
        return 0, 0
    return u.uid, u.gid


def sync_into(pid: int, user: str, files: list[FileSync]) -> int:
    """Apply the changes to the container whose PID 1 is `pid`; returns how many were applied.
    Whatever the container put in the way (a FIFO, a symlink into /proc, a file where a directory
    should be) is a SyscallError naming the path, never a hang or a crash of the watcher."""
    try:
        root_fd = os.open(f"/proc/{pid}/root", O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise SyscallError("sync", f"/proc/{pid}/root", e.errno or 0, hint="the container has stopped") from None
    try:
        uid, gid = container_owner(root_fd, user)
        done = 0
        for f in files:
            parent, _, name = f.target.rstrip("/").rpartition("/")
            # the disk decides, not the event: a set of events may hold "deleted" and "added" for
            # one path (git replaces files), in no particular order
            if not os.path.exists(f.source):
                done += _delete(root_fd, parent, name)
            elif os.path.isfile(f.source):
                _write(root_fd, parent, name, f.source, uid, gid)
                done += 1
        return done
    finally:
        os.close(root_fd)


def _delete(root_fd: int, parent: str, name: str) -> int:
    try:
        pfd = openat2(root_fd, parent.lstrip("/") or ".", O_PATH | os.O_DIRECTORY, FLAGS)
    except SyscallError:
        return 0
    try:
        try:
            os.unlink(name, dir_fd=pfd)
        except IsADirectoryError:
            shutil.rmtree(f"/proc/self/fd/{pfd}/{name}")
        except FileNotFoundError:
            return 0
        return 1
    finally:
        os.close(pfd)


def _write(root_fd: int, parent: str, name: str, source: str, uid: int, gid: int) -> None:
    try:
        real = mkdirs_in_root(root_fd, parent.lstrip("/"))
    except OSError as e:               # mkdirs_in_root raises SyscallError; readlink and stat OSError
        raise SyscallError("sync", f"{parent}/{name}", e.errno or 0) from None
    pfd = openat2(root_fd, real, O_PATH | os.O_DIRECTORY, FLAGS)
    # a name the container cannot guess, created exclusively: nothing it placed there (a FIFO that
    # would block the open, a symlink) is ever opened
    tmp = f".{name}.envtool-sync-{secrets.token_hex(6)}"
    try:
        st = os.stat(source)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600,
                     dir_fd=pfd)
        try:
            with open(source, "rb") as src:
                while block := src.read(1 << 20):
                    view = memoryview(block)
                    while view:
                        view = view[os.write(fd, view):]
            os.fchown(fd, uid, gid)
            os.fchmod(fd, st.st_mode & 0o7777 & ~0o6000)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
    except OSError as e:
        try:
            os.unlink(tmp, dir_fd=pfd)
        except OSError:
            pass
        if e.errno == errno.EROFS:
            raise SyscallError("sync", f"{parent}/{name}", e.errno, hint="the service has read_only = true") from None
        raise SyscallError("sync", f"{parent}/{name}", e.errno or 0) from None
    finally:
        os.close(pfd)
