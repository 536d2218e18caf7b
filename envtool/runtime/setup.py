"""ContainerConfig → the list of filesystem setup operations, as data (bubblewrap's SetupOp).

`setup_ops` is pure: it decides what is mounted where and in which order.  `apply_setup` walks the
list through a Syscalls object.  Every target is a container path resolved inside the new root
with openat2(RESOLVE_IN_ROOT), so a symlink in a hostile image cannot redirect a mount to the host.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from envtool._util.record import dataclass
from envtool.errors import SyscallError
from envtool.runtime.config import ContainerConfig
from envtool.runtime.syscalls import (
    MOUNT_ATTR_NODEV,
    MOUNT_ATTR_NOEXEC,
    MOUNT_ATTR_NOSUID,
    MOUNT_ATTR_RDONLY,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_STRICTATIME,
    Syscalls,
)


@dataclass(frozen=True)
class Mount:
    source: str | None
    target: str                    # container path ("/proc"); the rootfs mount itself uses "" and a host path
    fstype: str | None
    flags: int = 0
    data: str | None = None
    kind: str = "dir"              # what to create at the target if it is missing: dir | file
    source_in_root: bool = False   # the source is a container path (bind of /dev/null, self-binds)
    optional: bool = False         # a missing target is skipped (masked / read-only kernel paths)


@dataclass(frozen=True)
class Bind:
    """A bind mount from the host: the source is opened (by fd, refusing symlinks) at every start
    and its whole tree mounted with `attrs` applied to every mount in it."""
    source: str
    beneath: str | None
    target: str
    attrs: int


@dataclass(frozen=True)
class Device:
    path: str
    major: int
    minor: int
    mode: int = 0o666


@dataclass(frozen=True)
class Symlink:
    target: str
    path: str


@dataclass(frozen=True)
class RootfsMount:
    rootfs: str      # host path of the mountpoint
    data: str        # overlay options
    flags: int = 0


@dataclass(frozen=True)
class RemountRootReadOnly:
    rootfs: str


SetupOp = Mount | Bind | Device | Symlink | RootfsMount | RemountRootReadOnly

DEVICES = (Device("/dev/null", 1, 3), Device("/dev/zero", 1, 5), Device("/dev/full", 1, 7),
           Device("/dev/random", 1, 8), Device("/dev/urandom", 1, 9), Device("/dev/tty", 5, 0))
DEV_SYMLINKS = (Symlink("/proc/self/fd", "/dev/fd"), Symlink("/proc/self/fd/0", "/dev/stdin"),
                Symlink("/proc/self/fd/1", "/dev/stdout"), Symlink("/proc/self/fd/2", "/dev/stderr"),
                Symlink("/proc/kcore", "/dev/core"), Symlink("pts/ptmx", "/dev/ptmx"))
MASKED_FILES = ("/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug")
MASKED_DIRS = ("/proc/asound", "/proc/acpi", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

NOSUID_NODEV_NOEXEC = MS_NOSUID | MS_NODEV | MS_NOEXEC
SECRETS_DIR = "/run/secrets"


def overlay_data(cfg: ContainerConfig) -> str:
    lower = ":".join(reversed(cfg.layers))          # overlayfs lists the topmost layer first
    return f"lowerdir={lower},upperdir={cfg.upper},workdir={cfg.work}"


def setup_ops(cfg: ContainerConfig) -> list[SetupOp]:
    # the rootfs is always mounted writable so mountpoints can be made in the upper dir; a
    # read_only container gets it remounted read-only once every submount is in place (as Docker)
    # nodev on every writable filesystem and /dev read-only once populated: CAP_MKNOD (Docker's
    # default set) can then make device nodes but never open one — the host's disks stay out of
    # reach even where no device cgroup guards them (cgroup v2 has none without BPF)
    ops: list[SetupOp] = [RootfsMount(cfg.rootfs, overlay_data(cfg), MS_NODEV)]
    # kernel filesystems first: later binds (volumes, /etc files) may land under them
    ops.append(Mount("proc", "/proc", "proc", NOSUID_NODEV_NOEXEC))
    ops.append(Mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"))
    ops.extend(DEVICES)
    ops.append(Mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                     "newinstance,ptmxmode=0666,mode=0620,gid=5"))
    ops.append(Mount("shm", "/dev/shm", "tmpfs", NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k"))
    ops.append(Mount("mqueue", "/dev/mqueue", "mqueue", NOSUID_NODEV_NOEXEC))
    ops.extend(DEV_SYMLINKS)
    ops.append(Mount("sysfs", "/sys", "sysfs", NOSUID_NODEV_NOEXEC | MS_RDONLY))
    if cfg.init:
        ops.append(Mount(cfg.init, "/dev/init", None, MS_BIND, kind="file"))
        ops.append(Mount(None, "/dev/init", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                         kind="file"))
    ops.append(Mount(None, "/dev", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"))
    for name in ("hostname", "hosts", "resolv.conf"):
        if name == "resolv.conf" and cfg.resolv_conf is None:
            continue
        src = os.path.join(cfg.state_dir, name)
        ops.append(Mount(src, f"/etc/{name}", None, MS_BIND, kind="file"))
    if cfg.secrets:               # filled once the user is known (child.write_secrets), then read-only
        ops.append(Mount("tmpfs", SECRETS_DIR, "tmpfs", NOSUID_NODEV_NOEXEC, "mode=0755,size=4m", kind="dir"))
    for m in cfg.mounts:          # nodev and nosuid on every mount of the tree, ro where asked
        ops.append(Bind(m.source, m.beneath, m.target,
                        MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | (MOUNT_ATTR_RDONLY if m.read_only else 0)))
    # masking after /proc and /sys exist: /dev/null over files, an empty read-only tmpfs over dirs
    for path in MASKED_FILES:
        ops.append(Mount("/dev/null", path, None, MS_BIND, kind="file", source_in_root=True, optional=True))
    for path in MASKED_DIRS:
        ops.append(Mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0", optional=True))
    for path in READONLY_PATHS:
        ops.append(Mount(path, path, None, MS_BIND | MS_REC, source_in_root=True, optional=True))
        ops.append(Mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | NOSUID_NODEV_NOEXEC | MS_REC,
                         optional=True))
    if cfg.read_only:
        ops.append(RemountRootReadOnly(cfg.rootfs))
    return ops


def apply_setup(ops: list[SetupOp], sc: Syscalls) -> None:
    """Run the ops in order; the root fd is opened once the rootfs is mounted."""
    root_fd = -1
    try:
        for op in ops:
            if isinstance(op, RootfsMount):
                sc.mount("overlay", op.rootfs, "overlay", op.flags, op.data)
                root_fd = sc.open_dir(op.rootfs)
            elif isinstance(op, Mount):
                _apply_mount(op, sc, root_fd)
            elif isinstance(op, Bind):
                _apply_bind(op, sc, root_fd)
            elif isinstance(op, Device):
                _make_device(op, sc, root_fd)
            elif isinstance(op, Symlink):
                _make_symlink(op, sc, root_fd)
            elif isinstance(op, RemountRootReadOnly):
                sc.mount(None, op.rootfs, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV | MS_REC)
    finally:
        if root_fd >= 0:
            sc.close(root_fd)


def _make_device(dev: Device, sc: Syscalls, root_fd: int) -> None:
    """mknod the node; in a user namespace (rootless) that is refused, and the host's own node is
    bound onto an empty file instead, as runc and crun do rootless."""
    try:
        _in_parent(sc, root_fd, dev.path,
                   lambda fd, name: sc.mknod_in(fd, name, stat.S_IFCHR | dev.mode, os.makedev(dev.major, dev.minor)))
    except SyscallError as e:
        if e.errno != errno.EPERM:
            raise
        source = sc.open_bind_source(dev.path, None)
        try:
            target = sc.open_in_root(root_fd, dev.path, create="file")
            try:
                sc.bind_tree(source, target, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)
            finally:
                sc.close(target)
        finally:
            sc.close(source)


def _make_symlink(link: Symlink, sc: Syscalls, root_fd: int) -> None:
    _in_parent(sc, root_fd, link.path, lambda fd, name: sc.symlink_in(fd, link.target, name))


def _in_parent(sc: Syscalls, root_fd: int, path: str, fn: Callable[[int, str], None]) -> None:
    parent, _, name = path.rpartition("/")
    fd = sc.open_in_root(root_fd, parent or "/", "dir")
    try:
        fn(fd, name)
    finally:
        sc.close(fd)


def _apply_bind(op: Bind, sc: Syscalls, root_fd: int) -> None:
    sfd = sc.open_bind_source(op.source, op.beneath)
    try:
        tfd = sc.open_in_root(root_fd, op.target, "dir" if sc.is_dir(sfd) else "file")
        try:
            sc.bind_tree(sfd, tfd, op.attrs)
        except SyscallError as e:
            raise SyscallError(f"bind {op.source} on {op.target}", "", e.errno, e.detail) from None
        finally:
            sc.close(tfd)
    finally:
        sc.close(sfd)


def _apply_mount(op: Mount, sc: Syscalls, root_fd: int) -> None:
    fds: list[int] = []
    try:
        try:
            tfd = sc.open_in_root(root_fd, op.target, None if op.optional else op.kind)
        except SyscallError as e:
            if op.optional and e.errno == errno.ENOENT:
                return
            raise
        fds.append(tfd)
        source = op.source
        if op.source_in_root and source is not None:
            sfd = sc.open_in_root(root_fd, source)
            fds.append(sfd)
            source = sc.proc_fd_path(sfd)
        try:
            sc.mount(source, sc.proc_fd_path(tfd), op.fstype, op.flags, op.data)
        except SyscallError as e:
            what = f"mount {op.fstype or op.source or 'bind'} on {op.target}"
            raise SyscallError(what, "", e.errno, e.detail) from None
    finally:
        for fd in fds:
            sc.close(fd)
