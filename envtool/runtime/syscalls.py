"""THE libc boundary: every ctypes call of the runtime lives here.

Everything this module needs is imported at the top: the child calls these methods after
pivot_root, when the host's Python library is no longer reachable.

`Syscalls` is the protocol the runtime codes against; `LinuxSyscalls` performs the calls and
raises SyscallError (never a bare OSError); `RecordingSyscalls` is the test double that records
each call and can be told to fail one.  Semantic operations (`pivot_root`, `open_in_root`) hide
multi-step kernel idioms so the double stays simple.
"""

from __future__ import annotations

import array
import ctypes
import errno
import fcntl
import os
import shutil
import signal
import socket
import stat
import struct
import termios
from typing import Any, Protocol

from envtool._util.record import dataclass, field
from envtool._util.safe_read import NotARegularFile, read_regular
from envtool.errors import SyscallError
from envtool.runtime.caps import last_cap

# namespaces (linux/sched.h)
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x10000000, 0x20000000, 0x40000000

# mount flags (linux/mount.h)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE, MS_SLAVE, MS_STRICTATIME = 0x20, 0x1000, 0x4000, 0x40000, 0x80000, 0x1000000
MNT_DETACH = 0x2
MOUNT_FLAG_NAMES = {MS_RDONLY: "MS_RDONLY", MS_NOSUID: "MS_NOSUID", MS_NODEV: "MS_NODEV",
                    MS_NOEXEC: "MS_NOEXEC", MS_REMOUNT: "MS_REMOUNT", MS_BIND: "MS_BIND", MS_REC: "MS_REC",
                    MS_PRIVATE: "MS_PRIVATE", MS_SLAVE: "MS_SLAVE", MS_STRICTATIME: "MS_STRICTATIME"}

# prctl
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 24, 38, 22
PR_SET_CHILD_SUBREAPER, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 36, 47, 4
PR_SET_DUMPABLE = 4
SECCOMP_MODE_FILTER = 2

# openat2 (linux/openat2.h)
SYS_OPENAT2, SYS_PIVOT_ROOT, SYS_CAPSET, SYS_CLOSE_RANGE = 437, 155, 126, 436
# the new mount API (the same numbers on every architecture)
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE, AT_EMPTY_PATH, AT_RECURSIVE = 0x1, 0x1000, 0x8000
MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH = 0x4, 0x40
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 0x1, 0x2, 0x4, 0x8
RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH, RESOLVE_IN_ROOT = 0x02, 0x04, 0x08, 0x10
O_PATH = getattr(os, "O_PATH", 0o10000000)
CLOSE_RANGE_CLOEXEC = 1 << 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def mount_flag_names(flags: int) -> str:
    names = [n for bit, n in MOUNT_FLAG_NAMES.items() if flags & bit]
    rest = flags & ~sum(MOUNT_FLAG_NAMES)
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "0"


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_libc: Any = None


def _lib() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                                ctypes.c_char_p]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return _libc


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def _check(ret: int, op: str, target: str = "", detail: str = "") -> int:
    if ret < 0:
        raise SyscallError(op, target, ctypes.get_errno(), detail)
    return ret


class Syscalls(Protocol):
    def unshare(self, flags: int) -> None: ...
    def setns(self, fd: int, nstype: int) -> None: ...
    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None: ...
    def umount(self, target: str, flags: int = 0) -> None: ...
    def open_dir(self, path: str) -> int: ...
    def open_in_root(self, root_fd: int, path: str, create: str | None = None) -> int: ...
    def proc_fd_path(self, fd: int) -> str: ...
    def open_bind_source(self, source: str, beneath: str | None) -> int: ...
    def is_dir(self, fd: int) -> bool: ...
    def bind_tree(self, source_fd: int, target_fd: int, attrs: int) -> None: ...
    def close(self, fd: int) -> None: ...
    def mknod_in(self, dir_fd: int, name: str, mode: int, dev: int) -> None: ...
    def symlink_in(self, dir_fd: int, target: str, name: str) -> None: ...
    def pivot_root(self, new_root: str) -> None: ...
    def sethostname(self, name: str) -> None: ...
    def link_up(self, name: str) -> None: ...
    def drop_bounding(self, keep: int) -> None: ...
    def capset(self, effective: int, permitted: int, inheritable: int) -> None: ...
    def clear_ambient(self) -> None: ...
    def set_no_new_privs(self) -> None: ...
    def seccomp_load(self, bpf: bytes) -> None: ...
    def set_user(self, uid: int, gid: int, groups: list[int]) -> None: ...
    def write_file(self, path: str, data: str) -> None: ...
    def await_placement(self, fd: int) -> None: ...
    def write_secret(self, path: str, data: bytes, uid: int, gid: int, mode: int) -> None: ...
    def cloexec_from(self, fd: int) -> None: ...
    def close_fds_except(self, keep: tuple[int, ...]) -> None: ...
    def set_dumpable(self, dumpable: bool) -> None: ...
    def reset_signals(self) -> None: ...
    def setsid(self) -> None: ...
    def chdir(self, path: str) -> None: ...
    def makedirs(self, path: str) -> None: ...
    def read_text(self, path: str) -> str: ...
    def which(self, name: str, path: str) -> str | None: ...
    def setup_console(self, socket_fd: int, uid: int) -> None: ...
    def set_parent_death_signal(self, sig: int) -> None: ...
    def set_child_subreaper(self, on: bool) -> None: ...


class LinuxSyscalls:
    """The real thing.  Only this class touches libc."""

    def unshare(self, flags: int) -> None:
        _check(_lib().unshare(flags), "unshare", detail=hex(flags))

    def setns(self, fd: int, nstype: int) -> None:
        _check(_lib().setns(fd, nstype), "setns", detail=hex(nstype))

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
        ret = _lib().mount(_b(source), _b(target), _b(fstype), flags, _b(data))
        if ret < 0:
            what = f"mount {fstype or source or ''} on {target}".replace("  ", " ")
            raise SyscallError(what, "", ctypes.get_errno(), f"flags={mount_flag_names(flags)}")

    def umount(self, target: str, flags: int = 0) -> None:
        _check(_lib().umount2(_b(target), flags), "umount", target)

    def openat2(self, dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
        how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
        return _check(_lib().syscall(SYS_OPENAT2, dir_fd, _b(path), ctypes.byref(how), ctypes.sizeof(how)),
                      "openat2", path)

    def open_dir(self, path: str) -> int:
        try:
            return os.open(path, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise SyscallError("open", path, e.errno or 0) from None

    def open_in_root(self, root_fd: int, path: str, create: str | None = None) -> int:
        """O_PATH fd of `path` resolved inside root (symlinks cannot leave it); with `create`
        ("dir" or "file") missing directories are made, following symlinks the way the container
        will see them, and a missing last component is created."""
        rel = path.strip("/")
        resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
        if not rel:
            return os.dup(root_fd)
        try:
            return self.openat2(root_fd, rel, O_PATH, resolve)
        except SyscallError as e:
            if e.errno != errno.ENOENT or create is None:
                raise
        if create == "dir":
            return self.openat2(root_fd, mkdirs_in_root(root_fd, rel), O_PATH, resolve)
        parent, _, name = rel.rpartition("/")
        pfd = self.openat2(root_fd, mkdirs_in_root(root_fd, parent), O_PATH | os.O_DIRECTORY, resolve)
        try:
            try:
                os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=pfd))
            except FileExistsError:
                pass
            except OSError as e:
                raise SyscallError("create", path, e.errno or 0) from None
            return self.openat2(pfd, name, O_PATH, resolve)
        finally:
            os.close(pfd)

    def proc_fd_path(self, fd: int) -> str:
        return f"/proc/self/fd/{fd}"

    def open_bind_source(self, source: str, beneath: str | None) -> int:
        """O_PATH fd of a bind mount's host source, opened now, at this start: no symlink is
        followed anywhere in `source` (it was resolved when the stack was planned), and with
        `beneath` (the project directory, the volumes directory) it cannot leave that directory.
        A container that replaced its bind source with `ln -s / data` makes this fail, where
        mounting the path string would have mounted the host's root."""
        resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
        try:
            if beneath is None:
                return self.openat2(-100, source, O_PATH, resolve)     # AT_FDCWD, absolute path
            base = self.openat2(-100, beneath, O_PATH | os.O_DIRECTORY, resolve)
            try:
                rel = os.path.relpath(source, beneath)
                if rel == ".":
                    return os.dup(base)
                return self.openat2(base, rel, O_PATH, resolve | RESOLVE_BENEATH)
            finally:
                os.close(base)
        except SyscallError as e:
            why = {errno.ELOOP: "it, or a directory on its way, is now a symlink",
                   errno.EXDEV: "it now leads outside " + (beneath or "/")}.get(e.errno, "")
            raise SyscallError("open bind source", source, e.errno, why) from None

    def is_dir(self, fd: int) -> bool:
        return stat.S_ISDIR(os.fstat(fd).st_mode)

    def bind_tree(self, source_fd: int, target_fd: int, attrs: int) -> None:
        """Bind the tree at source_fd (with every mount under it) onto target_fd, setting `attrs`
        (MOUNT_ATTR_*) on each of those mounts: open_tree(OPEN_TREE_CLONE|AT_RECURSIVE) makes a
        detached copy, mount_setattr(AT_RECURSIVE) locks it down — a tmpfs or device-capable mount
        someone placed under the source gets nodev/nosuid/ro too, which a remount of the top
        mount (MS_REMOUNT ignores MS_REC) never gave — and move_mount puts it in place."""
        lib = _lib()
        tree = _check(lib.syscall(SYS_OPEN_TREE, source_fd, b"", OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH
                                  | os.O_CLOEXEC), "open_tree", self.proc_fd_path(source_fd))
        try:
            attr = _MountAttr(attrs, 0, 0, 0)
            _check(lib.syscall(SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH | AT_RECURSIVE, ctypes.byref(attr),
                               ctypes.sizeof(attr)), "mount_setattr", detail=hex(attrs))
            _check(lib.syscall(SYS_MOVE_MOUNT, tree, b"", target_fd, b"",
                               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH), "move_mount")
        finally:
            os.close(tree)

    def close(self, fd: int) -> None:
        os.close(fd)

    def mknod_in(self, dir_fd: int, name: str, mode: int, dev: int) -> None:
        dfd = self.openat2(dir_fd, ".", os.O_DIRECTORY | os.O_RDONLY, 0)
        try:
            os.mknod(name, mode, dev, dir_fd=dfd)
            os.chmod(name, mode & 0o7777, dir_fd=dfd)
        except OSError as e:
            raise SyscallError("mknod", name, e.errno or 0) from None
        finally:
            os.close(dfd)

    def symlink_in(self, dir_fd: int, target: str, name: str) -> None:
        dfd = self.openat2(dir_fd, ".", os.O_DIRECTORY | os.O_RDONLY, 0)
        try:
            os.symlink(target, name, dir_fd=dfd)
        except FileExistsError:
            pass
        except OSError as e:
            raise SyscallError("symlink", name, e.errno or 0) from None
        finally:
            os.close(dfd)

    def pivot_root(self, new_root: str) -> None:
        """chdir into new_root, pivot_root(".", "."), detach the old root stacked on top."""
        try:
            os.chdir(new_root)
        except OSError as e:
            raise SyscallError("chdir", new_root, e.errno or 0) from None
        _check(_lib().syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root", new_root)
        # the old root is now mounted on top of "."; make it a slave so the detach cannot
        # propagate back to the host, then detach it
        self.mount(None, ".", None, MS_SLAVE | MS_REC)
        self.umount(".", MNT_DETACH)
        os.chdir("/")

    def sethostname(self, name: str) -> None:
        try:
            socket.sethostname(name)
        except OSError as e:
            raise SyscallError("sethostname", name, e.errno or 0) from None

    def link_up(self, name: str) -> None:
        SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                req = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH14x", name.encode(), 0))
                flags = struct.unpack("16sH14x", req)[1]
                fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | IFF_UP))
            except OSError as e:
                raise SyscallError("set link up", name, e.errno or 0) from None

    def drop_bounding(self, keep: int) -> None:
        for cap in range(last_cap() + 1):
            if not keep >> cap & 1:
                _check(_lib().prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "prctl(PR_CAPBSET_DROP)", str(cap))

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)(
            _CapData(effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF),
            _CapData(effective >> 32, permitted >> 32, inheritable >> 32))
        _check(_lib().syscall(SYS_CAPSET, ctypes.byref(hdr), ctypes.byref(data)), "capset")

    def clear_ambient(self) -> None:
        _check(_lib().prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "prctl(PR_CAP_AMBIENT)")

    def set_no_new_privs(self) -> None:
        _check(_lib().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")

    def seccomp_load(self, bpf: bytes) -> None:
        buf = ctypes.create_string_buffer(bpf, len(bpf))
        prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
        lib = _lib()
        ret = lib.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0)
        _check(ret, "prctl(PR_SET_SECCOMP)")

    def set_user(self, uid: int, gid: int, groups: list[int]) -> None:
        try:
            os.setgroups(groups)
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
        except OSError as e:
            raise SyscallError("set user", f"{uid}:{gid}", e.errno or 0) from None

    def write_secret(self, path: str, data: bytes, uid: int, gid: int, mode: int) -> None:
        """A new file (never an existing one, never through a symlink), owned and moded as asked."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        except OSError as e:
            raise SyscallError("write secret", path, e.errno or 0) from None

    def write_file(self, path: str, data: str) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, data.encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise SyscallError("write", path, e.errno or 0) from None

    def await_placement(self, fd: int) -> None:
        """Block until the parent says this process is in its cgroups ("1" on the pipe `fd`), then
        close the pipe; anything else (its errno, or the pipe closed by a parent that died) fails."""
        try:
            said = os.read(fd, 16)
        except OSError as e:
            raise SyscallError("join cgroup", "", e.errno or 0) from None
        finally:
            os.close(fd)
        if said != b"1":
            err = int(said[1:]) if said[:1] == b"E" and said[1:].isdigit() else errno.EPIPE
            raise SyscallError("join cgroup", "", err)

    def cloexec_from(self, fd: int) -> None:
        """Mark every fd >= `fd` close-on-exec, so nothing of ours leaks into the container
        (CVE-2024-21626 leaked a host directory fd this way)."""
        if _lib().syscall(SYS_CLOSE_RANGE, fd, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC) < 0:
            for n in os.listdir("/proc/self/fd"):
                if int(n) >= fd:
                    try:
                        os.set_inheritable(int(n), False)
                    except OSError:
                        pass

    def close_fds_except(self, keep: tuple[int, ...]) -> None:
        """Close every fd above stdio that is not in `keep` (close_range over the gaps): a process
        about to enter a container must hold nothing of its parent's (control sockets, DNS, logs)
        that a container process could copy out of it with pidfd_getfd."""
        low = 3
        for fd in sorted(k for k in set(keep) if k >= 3):
            if fd > low:
                os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, 0x7FFFFFFF)

    def set_dumpable(self, dumpable: bool) -> None:
        """Not dumpable: ptrace, pidfd_getfd and /proc/<pid>/{fd,mem,environ} of this process need
        CAP_SYS_PTRACE in the host's user namespace (runc's fix for CVE-2016-9962).  execve makes an
        ordinary program dumpable again."""
        _check(_lib().prctl(PR_SET_DUMPABLE, 1 if dumpable else 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")

    def reset_signals(self) -> None:
        """Python ignores SIGPIPE and SIGXFSZ; ignored signals survive exec, so restore them all."""
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD,
                    signal.SIGHUP, signal.SIGWINCH):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])

    def setsid(self) -> None:
        try:
            os.setsid()
        except OSError as e:
            raise SyscallError("setsid", "", e.errno or 0) from None

    def chdir(self, path: str) -> None:
        try:
            os.chdir(path)
        except OSError as e:
            raise SyscallError("chdir", path, e.errno or 0) from None

    def makedirs(self, path: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise SyscallError("mkdir", path, e.errno or 0) from None

    def read_text(self, path: str) -> str:
        """A regular file's text, "" when it is missing; a FIFO or device there (a hostile image's
        /etc/passwd) is an error, never a read that blocks the container's start."""
        try:
            return read_regular(path)
        except NotARegularFile as e:
            raise SyscallError("read", path, errno.EINVAL, e.strerror or "") from None
        except OSError:
            return ""


    def which(self, name: str, path: str) -> str | None:
        if "/" in name:
            return name if os.path.exists(name) else None
        return shutil.which(name, path=path) or (None if not any(
            os.path.exists(os.path.join(d, name)) for d in path.split(":")) else name)


    def set_parent_death_signal(self, sig: int) -> None:
        _check(_lib().prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")

    def set_child_subreaper(self, on: bool) -> None:
        _check(_lib().prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")

    def setup_console(self, socket_fd: int, uid: int) -> None:
        """Open a pty from the container's own devpts, make its slave our controlling terminal
        and stdio, and hand the master to the parent over the socket (runc's console socket)."""
        TIOCGPTN, TIOCSPTLCK = 0x80045430, 0x40045431
        try:
            master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
            n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
            slave = os.open(f"/dev/pts/{n}", os.O_RDWR | os.O_NOCTTY)
            os.fchown(slave, uid, -1)
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            os.close(slave)
            sock = socket.socket(fileno=socket_fd)
            try:
                sock.sendmsg([b"m"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [master]))])
            finally:
                sock.close()
            os.close(master)
        except OSError as e:
            raise SyscallError("set up console", "/dev/ptmx", e.errno or 0) from None


def redirect_stdio(stdio: tuple[int, int, int]) -> None:
    """Make the given fds this process's stdin, stdout and stderr (in a freshly forked child)."""
    for n, fd in enumerate(stdio):
        if fd != n:
            os.dup2(fd, n)


def mkdirs_in_root(root_fd: int, rel: str) -> str:
    """mkdir -p of `rel` inside the directory `root_fd`, following symlinks as the container will
    see them (absolute targets restart at the root, `..` stops at it).  Returns the real path, free
    of symlinks, relative to the root.  Used for mount targets and for layer extraction."""
    resolved: list[str] = []
    queue = rel.split("/")
    hops = 0
    while queue:
        comp = queue.pop(0)
        if comp in ("", "."):
            continue
        if comp == "..":
            if resolved:
                resolved.pop()
            continue
        pfd = openat2(root_fd, "/".join(resolved) or ".", O_PATH | os.O_DIRECTORY,
                      RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
        try:
            try:
                st = os.stat(comp, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                try:
                    os.mkdir(comp, 0o755, dir_fd=pfd)
                except OSError as e:
                    raise SyscallError("mkdir", "/".join(resolved + [comp]), e.errno or 0) from None
                resolved.append(comp)
                continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > 40:
                    raise SyscallError("resolve", rel, errno.ELOOP)
                target = os.readlink(comp, dir_fd=pfd)
                if target.startswith("/"):
                    resolved = []
                queue = target.split("/") + queue
            elif stat.S_ISDIR(st.st_mode):
                resolved.append(comp)
            else:
                raise SyscallError("resolve", rel, errno.ENOTDIR)
        finally:
            os.close(pfd)
    return "/".join(resolved) or "."


def openat2(dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    return LinuxSyscalls().openat2(dir_fd, path, flags, resolve, mode)


@dataclass
class RecordingSyscalls:
    """The test double: records (operation, args) and fails on request.

    fail_at maps "op" or "op:target" to an errno; the first matching call raises SyscallError.
    Paths come back as root + path, so tests can assert on container-relative targets.
    """

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    fail_at: dict[str, int] = field(default_factory=dict)
    roots: dict[int, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)    # what read_text returns, by path
    _next_fd: int = 1000

    def _record(self, op: str, args: tuple[Any, ...], target: str = "") -> None:
        for key in (f"{op}:{target}", op):
            if key in self.fail_at:
                err = self.fail_at.pop(key)
                raise SyscallError(op, target, err)
        self.calls.append((op, args))

    def _fd(self, path: str) -> int:
        self._next_fd += 1
        self.roots[self._next_fd] = path
        return self._next_fd

    def ops(self, name: str) -> list[tuple[Any, ...]]:
        return [args for op, args in self.calls if op == name]

    def unshare(self, flags: int) -> None:
        self._record("unshare", (flags,))

    def setns(self, fd: int, nstype: int) -> None:
        self._record("setns", (fd, nstype))

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
        self._record("mount", (source, target, fstype, flags, data), target)

    def umount(self, target: str, flags: int = 0) -> None:
        self._record("umount", (target, flags), target)

    def open_in_root(self, root_fd: int, path: str, create: str | None = None) -> int:
        full = self.roots.get(root_fd, "") + "/" + path.strip("/")
        self._record("open_in_root", (full.rstrip("/") or "/", create), full)
        return self._fd(full.rstrip("/"))

    def open_dir(self, path: str) -> int:
        return self._fd(path)

    def proc_fd_path(self, fd: int) -> str:
        return self.roots[fd]

    def open_bind_source(self, source: str, beneath: str | None) -> int:
        self._record("open_bind_source", (source, beneath), source)
        return self._fd(source)

    def is_dir(self, fd: int) -> bool:
        return not self.roots[fd].endswith((".sock", ".conf", ".txt", "file"))

    def bind_tree(self, source_fd: int, target_fd: int, attrs: int) -> None:
        self._record("bind_tree", (self.roots[source_fd], self.roots[target_fd], attrs), self.roots[target_fd])

    def close(self, fd: int) -> None:
        self.roots.pop(fd, None)

    def mknod_in(self, dir_fd: int, name: str, mode: int, dev: int) -> None:
        self._record("mknod", (f"{self.roots[dir_fd]}/{name}", mode, dev), name)

    def symlink_in(self, dir_fd: int, target: str, name: str) -> None:
        self._record("symlink", (target, f"{self.roots[dir_fd]}/{name}"), name)

    def pivot_root(self, new_root: str) -> None:
        self._record("pivot_root", (new_root,), new_root)

    def sethostname(self, name: str) -> None:
        self._record("sethostname", (name,), name)

    def link_up(self, name: str) -> None:
        self._record("link_up", (name,), name)

    def drop_bounding(self, keep: int) -> None:
        self._record("drop_bounding", (keep,))

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self._record("capset", (effective, permitted, inheritable))

    def clear_ambient(self) -> None:
        self._record("clear_ambient", ())

    def set_no_new_privs(self) -> None:
        self._record("set_no_new_privs", ())

    def seccomp_load(self, bpf: bytes) -> None:
        self._record("seccomp_load", (len(bpf),))

    def set_user(self, uid: int, gid: int, groups: list[int]) -> None:
        self._record("set_user", (uid, gid, tuple(groups)))

    def write_file(self, path: str, data: str) -> None:
        self._record("write_file", (path, data), path)

    def write_secret(self, path: str, data: bytes, uid: int, gid: int, mode: int) -> None:
        self._record("write_secret", (path, len(data), uid, gid, mode), path)

    def await_placement(self, fd: int) -> None:
        self._record("await_placement", (fd,))

    def cloexec_from(self, fd: int) -> None:
        self._record("cloexec_from", (fd,))

    def close_fds_except(self, keep: tuple[int, ...]) -> None:
        self._record("close_fds_except", (tuple(sorted(keep)),))

    def set_dumpable(self, dumpable: bool) -> None:
        self._record("set_dumpable", (dumpable,))

    def reset_signals(self) -> None:
        self._record("reset_signals", ())

    def setsid(self) -> None:
        self._record("setsid", ())

    def chdir(self, path: str) -> None:
        self._record("chdir", (path,), path)

    def makedirs(self, path: str) -> None:
        self._record("makedirs", (path,), path)

    def read_text(self, path: str) -> str:
        self._record("read_text", (path,), path)
        return self.files.get(path, "")

    def which(self, name: str, path: str) -> str | None:
        self._record("which", (name, path), name)
        return name

    def setup_console(self, socket_fd: int, uid: int) -> None:
        self._record("setup_console", (socket_fd, uid))

    def set_parent_death_signal(self, sig: int) -> None:
        self._record("set_parent_death_signal", (sig,))

    def set_child_subreaper(self, on: bool) -> None:
        self._record("set_child_subreaper", (on,))
