"""Run a process inside a running container (exec, healthchecks): youki's tenant builder.

The caller forks; the child (the middle process) joins the container's cgroup and namespaces (the
mount namespace last, it changes what paths mean), then forks again so the grandchild is inside the
pid namespace; the grandchild drops privileges exactly as the container's own process did and execs.
The middle process waits and exits with the grandchild's status, so the caller sees one child.

The grandchild is the first thing of ours a container process can see, so everything that protects
it happens in the middle process, before that fork (runc's CVE-2016-9962 and CVE-2024-21626):
1. not dumpable: no ptrace, pidfd_getfd or /proc/<pid>/fd of it without CAP_SYS_PTRACE on the host;
2. every fd but stdio, the report pipe, the console socket and the namespace fds closed — nothing of
   the supervisor's or CLI's (control socket, DNS sockets, logs) is left to copy;
3. no_new_privs and the container's seccomp filter in place, so even a stopped and inspected
   grandchild is as confined as the container's own processes.
"""

from __future__ import annotations

import errno
import gc
import os
from typing import NoReturn

from envtool._util.record import dataclass
from envtool.runtime import ipc
from envtool.runtime.caps import mask
from envtool.runtime.syscalls import (
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUTS,
    LinuxSyscalls,
    Syscalls,
    redirect_stdio,
)
from envtool.runtime.users import User, resolve_user

NAMESPACES = (("cgroup", CLONE_NEWCGROUP), ("ipc", CLONE_NEWIPC), ("uts", CLONE_NEWUTS), ("net", CLONE_NEWNET),
              ("pid", CLONE_NEWPID), ("mnt", CLONE_NEWNS))


@dataclass(frozen=True)
class EnterSpec:
    pid: int                                  # the container's PID 1 (as seen from the host)
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    workdir: str
    user: str
    capabilities: frozenset[str]
    cgroup_procs: tuple[str, ...]
    seccomp_bpf: bytes | None


def spawn(spec: EnterSpec, stdio: tuple[int, int, int] | None = None, console_fd: int | None = None
          ) -> tuple[int, int]:
    """Fork the entering process; returns (pid, report_fd).  report_fd yields a ChildFailed or EOF."""
    ns_fds = [(os.open(f"/proc/{spec.pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), flag) for name, flag in NAMESPACES]
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
    except BaseException:
        for fd, _ in ns_fds:
            os.close(fd)
        os.close(r)
        os.close(w)
        raise
    if pid == 0:
        os.close(r)
        if stdio:
            redirect_stdio(stdio)
        _middle(spec, ns_fds, w, console_fd, LinuxSyscalls())
    for fd, _ in ns_fds:
        os.close(fd)
    os.close(w)
    return pid, r


def report(pid: int, report_fd: int) -> ipc.ChildFailed | None:
    """Wait (bounded) for the entering process's report and close the pipe; one that hangs in the
    container (a FIFO in its way) is killed and reported as failed."""
    try:
        failure = ipc.receive(report_fd)
    finally:
        os.close(report_fd)
    if failure is not None and failure.errno == errno.ETIMEDOUT:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    return failure


def run(spec: EnterSpec, name: str, stdio: tuple[int, int, int] | None = None) -> int:
    """Run the command in the container and wait for it: its exit code, or the failure to enter
    raised as an error naming the container."""
    pid, report_fd = spawn(spec, stdio=stdio)
    failure = report(pid, report_fd)
    _, status = os.waitpid(pid, 0)
    if failure is not None:
        raise failure.to_error(name)
    return os.waitstatus_to_exitcode(status)


def _middle(spec: EnterSpec, ns_fds: list[tuple[int, int]], report: int, console_fd: int | None,
            sc: Syscalls) -> NoReturn:
    step = "join"
    try:
        gc.disable()                  # no finalizer may close an fd number we reuse below
        sc.set_dumpable(False)
        sc.close_fds_except((report, *(fd for fd, _ in ns_fds), *(() if console_fd is None else (console_fd,))))
        sc.reset_signals()
        sc.setsid()
        for procs in spec.cgroup_procs:
            try:
                sc.write_file(procs, "0")
            except OSError:
                pass
        for fd, flag in ns_fds:
            sc.setns(fd, flag)
            os.close(fd)
        step = "user"                 # the container's /etc, read before anything of ours is visible
        user = resolve_user(spec.user, sc.read_text("/etc/passwd"), sc.read_text("/etc/group"))
        step = "no_new_privs"
        sc.set_no_new_privs()
        step = "seccomp"
        if spec.seccomp_bpf:
            sc.seccomp_load(spec.seccomp_bpf)
        step = "fork"
        pid = os.fork()
        if pid == 0:
            _inner(spec, user, report, console_fd, sc)
        os.close(report)
        if console_fd is not None:
            os.close(console_fd)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    except BaseException as e:  # noqa: BLE001
        ipc.send(report, ipc.ChildFailed.of(step, e))
        os._exit(127)


def _inner(spec: EnterSpec, user: User, report: int, console_fd: int | None, sc: Syscalls) -> NoReturn:
    """In the container's pid namespace, already under no_new_privs and seccomp."""
    step = "session"
    try:
        sc.setsid()                   # a session of its own, so the pty can become its terminal
        if console_fd is not None:
            step = "console"
            sc.setup_console(console_fd, user.uid)
        step = "capabilities"
        keep = mask(spec.capabilities)
        sc.drop_bounding(keep)
        sc.clear_ambient()
        step = "user"
        sc.set_user(user.uid, user.gid, list(user.groups))
        step = "workdir"
        sc.chdir(spec.workdir)
        step = "capabilities"
        if user.uid == 0:
            sc.capset(keep, keep, 0)
        env = dict(spec.env)
        env.setdefault("HOME", user.home)
        step = "exec"
        if sc.which(spec.argv[0], env.get("PATH", "/usr/local/bin:/usr/bin:/bin")) is None:
            raise FileNotFoundError(errno.ENOENT, "executable file not found", spec.argv[0])
        sc.cloexec_from(3)
        os.execvpe(spec.argv[0], list(spec.argv), env)
    except FileNotFoundError as e:
        msg = f"executable file not found in $PATH: {spec.argv[0]}" if step == "exec" else str(e)
        ipc.send(report, ipc.ChildFailed(step, msg, e.errno or 0))
    except BaseException as e:  # noqa: BLE001
        ipc.send(report, ipc.ChildFailed.of(step, e))
    os._exit(127)
