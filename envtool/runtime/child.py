"""The container child: one flat, ordered sequence from fork to exec.

Runs in the freshly forked PID 1 of a new pid namespace.  Between fork and exec it touches nothing
that takes a lock (no logging, no rich, no threads); a failure goes back to the parent as a
ChildFailed message on the report pipe and the child exits 127.
"""

from __future__ import annotations

import errno
import gc
import os
from typing import NoReturn

from envtool._util.record import dataclass
from envtool.runtime import ipc
from envtool.runtime.caps import mask
from envtool.runtime.config import ContainerConfig
from envtool.runtime.setup import SECRETS_DIR, apply_setup, setup_ops
from envtool.runtime.syscalls import (
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWUTS,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    Syscalls,
)
from envtool.runtime.users import User, resolve_user

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ChildContext:
    """What the parent prepared for the child (not part of the user's config)."""
    placed_fd: int | None           # the parent writes "1" here once the child is in its cgroups
    seccomp_bpf: bytes | None
    report_fd: int
    console_fd: int | None = None   # socket to send the pty master over (tty only)


def container_argv(cfg: ContainerConfig) -> list[str]:
    argv = list(cfg.argv)
    return ["/dev/init", "--", *argv] if cfg.init else argv


def container_env(cfg: ContainerConfig, home: str) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": cfg.hostname, "HOME": home}
    if cfg.tty:
        env["TERM"] = "xterm"
    env.update(cfg.env_dict())
    return env


def setup_container(cfg: ContainerConfig, ctx: ChildContext, sc: Syscalls, step: list[str]) -> User:
    """Everything between fork and exec, in order.  `step` holds the current step's name so a
    failure can say where it happened."""
    step[0] = "fds"                  # nothing of the parent's is reachable from here on: not
    sc.set_dumpable(False)           # dumpable (no ptrace or pidfd_getfd without CAP_SYS_PTRACE),
    sc.close_fds_except(tuple(fd for fd in (ctx.report_fd, ctx.console_fd, ctx.placed_fd) if fd is not None))
    step[0] = "signals"
    sc.reset_signals()
    step[0] = "session"
    sc.setsid()
    if cfg.die_with_parent:           # (the parent may already be gone: it then sees us in its cgroup)
        sc.set_parent_death_signal(9)
    step[0] = "namespaces"           # all but the cgroup namespace, which waits for the cgroup
    flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC
    sc.unshare(flags | CLONE_NEWNET if cfg.netns is None else flags)
    if cfg.netns not in (None, "host"):
        _join_netns(cfg.netns, sc)
    step[0] = "propagation"          # nothing mounted from here on can reach the host
    sc.mount(None, "/", None, MS_REC | MS_PRIVATE)
    step[0] = "rootfs"
    apply_setup(setup_ops(cfg), sc)
    step[0] = "pivot_root"
    sc.pivot_root(cfg.rootfs)
    step[0] = "cgroup"               # the parent moves us while we mount (the kernel's move waits
    if ctx.placed_fd is not None:    # for an RCU grace period, ~6 ms); in it before anything is
        sc.await_placement(ctx.placed_fd)   # written for the container, and before CLONE_NEWCGROUP
    sc.unshare(CLONE_NEWCGROUP)      # so that the cgroup becomes the namespace's root
    step[0] = "hostname"
    sc.sethostname(cfg.hostname)
    step[0] = "loopback"
    if cfg.netns is None:
        sc.link_up("lo")
    step[0] = "user"                 # read from the image's own /etc, after pivot_root
    user = resolve_user(cfg.user, sc.read_text("/etc/passwd"), sc.read_text("/etc/group"))
    if cfg.secrets:
        step[0] = "secrets"
        write_secrets(cfg, user, sc)
    step[0] = "console"              # a pty of the container's own devpts, owned by the user
    if ctx.console_fd is not None:
        sc.setup_console(ctx.console_fd, user.uid)
    step[0] = "workdir"
    if not cfg.read_only:
        sc.makedirs(cfg.workdir)
    step[0] = "capabilities"         # bounding set first, while we still hold CAP_SETPCAP
    keep = mask(cfg.capabilities)
    sc.drop_bounding(keep)
    sc.clear_ambient()
    step[0] = "user"                 # setuid away from root clears permitted/effective, as in Docker
    sc.set_user(user.uid, user.gid, list(user.groups))
    step[0] = "workdir"              # chdir as the user, so permissions are the user's
    sc.chdir(cfg.workdir)
    step[0] = "capabilities"
    if user.uid == 0:
        sc.capset(keep, keep, 0)
    step[0] = "exec"                 # a missing command is named here, not by tini after the start
    env = container_env(cfg, user.home)
    if sc.which(cfg.argv[0], env["PATH"]) is None:
        raise FileNotFoundError(errno.ENOENT, "executable file not found", cfg.argv[0])
    step[0] = "no_new_privs"         # lets seccomp load without CAP_SYS_ADMIN
    sc.set_no_new_privs()
    step[0] = "seccomp"              # last but exec: as few syscalls as possible run after it
    if ctx.seccomp_bpf:
        sc.seccomp_load(ctx.seccomp_bpf)
    step[0] = "exec"
    sc.cloexec_from(3)
    return user


def write_secrets(cfg: ContainerConfig, user: User, sc: Syscalls) -> None:
    """The secrets into the tmpfs at /run/secrets (mounted by setup_ops), each owned by the
    container's user unless given, then the tmpfs remounted read-only."""
    for sec in cfg.secrets:
        sc.write_secret(f"{SECRETS_DIR}/{sec.target}", sec.data, user.uid if sec.uid is None else sec.uid,
                        user.gid if sec.gid is None else sec.gid, sec.mode)
    sc.mount(None, SECRETS_DIR, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=4m")


def run_child(cfg: ContainerConfig, ctx: ChildContext, sc: Syscalls) -> NoReturn:
    step = ["fork"]
    try:
        gc.disable()                 # no finalizer may close an fd number the child reuses
        user = setup_container(cfg, ctx, sc, step)
        argv = container_argv(cfg)
        os.execvpe(argv[0], argv, container_env(cfg, user.home))
    except FileNotFoundError as e:
        msg = (f"executable file not found in $PATH: {cfg.argv[0]}" if step[0] == "exec"
               else ipc.ChildFailed.of(step[0], e).message)
        ipc.send(ctx.report_fd, ipc.ChildFailed(step[0], msg, e.errno or 0))
    except BaseException as e:  # noqa: BLE001 - everything must reach the parent, then _exit
        ipc.send(ctx.report_fd, ipc.ChildFailed.of(step[0], e))
    os._exit(127)


def _join_netns(path: str, sc: Syscalls) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)


