"""Parent side of a container: prepare, fork the child into a new pid namespace, wait, clean up.

No re-exec and no helper process: the caller unshares CLONE_NEWPID for its next child only, forks
(the child is PID 1 of the new namespace), and returns to its own namespace at once.  The caller
must be single-threaded (runc's nsenter/README explains why).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable

from envtool._util.record import dataclass, field
from envtool._util.wait import readable
from envtool.errors import HostError, SyscallError
from envtool.runtime import ipc, rootless
from envtool.runtime.cgroups import Cgroup, CgroupManager, detect
from envtool.runtime.child import ChildContext, run_child
from envtool.runtime.config import ContainerConfig
from envtool.runtime.syscalls import CLONE_NEWPID, LinuxSyscalls, Syscalls, redirect_stdio


@dataclass
class ExitInfo:
    code: int                      # shell convention: 128 + signal when killed
    signal: int | None = None
    oom_killed: bool = False
    memory_peak: int | None = None


@dataclass
class Container:
    cfg: ContainerConfig
    pid: int
    cgroup: Cgroup
    pidfd: int
    started: float = field(default_factory=time.monotonic)
    pty_master: int | None = None
    exit: ExitInfo | None = None


def find_init() -> str:
    for candidate in (os.environ.get("ENVTOOL_INIT"), "/usr/bin/tini-static", shutil.which("tini-static")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise HostError("no static init found for the container's PID 1",
                    hint="apt-get install -y tini (provides /usr/bin/tini-static), or pass --no-init")


def prepare(cfg: ContainerConfig) -> None:
    """State dir with upper/, work/, rootfs/ and the /etc files bound into the container."""
    for d in (cfg.state_dir, cfg.upper, cfg.work, cfg.rootfs):
        os.makedirs(d, exist_ok=True)
    hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if cfg.hostname:
        hosts.append(f"127.0.1.1\t{cfg.hostname}")
    hosts += [f"{addr}\t{names}" for addr, names in cfg.hosts]
    _write(os.path.join(cfg.state_dir, "hosts"), "\n".join(hosts) + "\n")
    _write(os.path.join(cfg.state_dir, "hostname"), cfg.hostname + "\n")
    if cfg.resolv_conf is not None:
        _write(os.path.join(cfg.state_dir, "resolv.conf"), cfg.resolv_conf)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


@dataclass
class Spawned:
    """A forked container child still setting itself up; `finish` waits for its report."""

    cfg: ContainerConfig
    pid: int
    cgroup: Cgroup
    report_fd: int
    console: tuple[socket.socket, socket.socket] | None


def start(cfg: ContainerConfig, *, sc: Syscalls | None = None, cgroups: CgroupManager | None = None,
          seccomp_cache: str | None = None, stdio: tuple[int, int, int] | None = None) -> Container:
    return finish(spawn(cfg, sc=sc, cgroups=cgroups, seccomp_cache=seccomp_cache, stdio=stdio))


def spawn(cfg: ContainerConfig, *, sc: Syscalls | None = None, cgroups: CgroupManager | None = None,
          seccomp_cache: str | None = None, stdio: tuple[int, int, int] | None = None) -> Spawned:
    """Fork the container's child and return at once: a caller starting many containers forks
    them all, then waits for each (their setups, and the kernel's cgroup moves, overlap).  What
    the child reaches through the caller (a netns at /proc/<pid>/fd/N) must stay open until
    `finish` returns."""
    sc = sc or LinuxSyscalls()
    bpf = None
    if cfg.seccomp:
        from envtool.runtime.seccomp import bpf_for

        bpf = bpf_for(cfg.capabilities, seccomp_cache)
    prepare(cfg)
    cgroup = (cgroups or detect()).create(f"{cfg.cgroup_parent}/{cfg.name}", cfg.limits)
    console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) if cfg.tty else None
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    placed_r, placed_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = _fork_in_new_pidns(sc)
    except BaseException:
        for fd in (read_fd, write_fd, placed_r, placed_w):
            os.close(fd)
        if console:
            for s in console:
                s.close()
        cgroup.remove()
        raise
    if pid == 0:
        os.close(read_fd)
        os.close(placed_w)
        if stdio:
            redirect_stdio(stdio)
        console_fd = console[1].detach() if console else None
        run_child(cfg, ChildContext(placed_r, bpf, write_fd, console_fd), LinuxSyscalls())
    os.close(write_fd)
    os.close(placed_r)
    _place(cgroup, pid, placed_w)
    return Spawned(cfg, pid, cgroup, read_fd, console)


def _place(cgroup: Cgroup, pid: int, placed_w: int) -> None:
    """Move the child into its cgroup while it sets up its mounts, then tell it.  The first move
    into a cgroup waits for an RCU grace period (~6 ms here, on v1 and v2 alike), which the child
    no longer waits out before it starts; it waits for "1" before it creates its cgroup namespace
    and before anything of the container is written.  A failed move reaches the child as its
    errno, and the child fails at its "cgroup" step as it did when it joined by itself."""
    try:
        try:
            cgroup.place(pid)
        except SyscallError as e:
            os.write(placed_w, f"E{e.errno}".encode())
        else:
            os.write(placed_w, b"1")
    except OSError:
        pass                               # the child is gone: finish() reads why
    finally:
        os.close(placed_w)


def finish(s: Spawned) -> Container:
    """Wait for the child's report: the running Container, or its failure raised (and reaped)."""
    cfg = s.cfg
    pidfd = os.pidfd_open(s.pid)
    master = _receive_console(s.console) if s.console else None
    failure = ipc.receive(s.report_fd)
    os.close(s.report_fd)
    c = Container(cfg, s.pid, s.cgroup, pidfd, pty_master=master)
    if failure is not None and failure.errno == errno.ETIMEDOUT:
        c.cgroup.kill_all()               # stuck in its setup: it will never exit by itself
        os.kill(s.pid, signal.SIGKILL)
    if failure is not None:
        reap(c)
        cleanup(c, remove_state=True)
        raise failure.to_error(cfg.name)
    return c


def _receive_console(console: tuple[socket.socket, socket.socket]) -> int | None:
    ours, theirs = console
    theirs.close()
    try:
        _, fds, _, _ = socket.recv_fds(ours, 16, 1)
    except OSError:
        fds = []
    finally:
        ours.close()
    if not fds:
        return None
    _copy_winsize(fds[0])
    return fds[0]


def _fork_in_new_pidns(sc: Syscalls) -> int:
    if rootless.active():
        return _fork_in_new_pidns_through_a_middle(sc)
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.unshare(CLONE_NEWPID)
        try:
            pid = os.fork()
        except OSError as e:
            sc.setns(own, CLONE_NEWPID)
            raise SyscallError("fork", "", e.errno or 0) from None
        if pid != 0:
            sc.setns(own, CLONE_NEWPID)     # our next children are ours again
        return pid
    finally:
        os.close(own)


def _fork_in_new_pidns_through_a_middle(sc: Syscalls) -> int:
    """Rootless: returning to our own pid namespace after unshare(CLONE_NEWPID) needs a capability
    in the host's user namespace, so a short-lived middle process unshares and forks the container's
    first process instead, and exits; we are the subreaper for that moment, so the container's
    process becomes our child (waitpid, pidfd) as if we had forked it."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    sc.set_child_subreaper(True)
    try:
        middle = os.fork()
    except OSError as e:
        sc.set_child_subreaper(False)
        for fd in (read_fd, write_fd, go_r, go_w):
            os.close(fd)
        raise SyscallError("fork", "", e.errno or 0) from None
    if middle == 0:
        os.close(read_fd)
        os.close(go_w)
        try:
            sc.unshare(CLONE_NEWPID)
            pid = os.fork()
        except BaseException as e:
            os.write(write_fd, f"E{getattr(e, 'errno', 0) or 0}".encode())
            os._exit(1)
        if pid == 0:                      # the container's first process, in its new pid namespace:
            os.close(write_fd)            # it goes on once it is our child (a parent-death signal set
            go = os.read(go_r, 1)         # while the middle lived would fire when the middle exits)
            os.close(go_r)
            if go != b"1":
                os._exit(1)
            return 0
        os.write(write_fd, str(pid).encode())
        os._exit(0)
    os.close(write_fd)
    os.close(go_r)
    try:
        said = os.read(read_fd, 64).decode()
        os.waitpid(middle, 0)
        if said and not said.startswith("E"):
            os.write(go_w, b"1")
    finally:
        sc.set_child_subreaper(False)
        os.close(read_fd)
        os.close(go_w)
    if not said or said.startswith("E"):
        raise SyscallError("fork", "", int(said[1:] or 0))
    return int(said)


def _copy_winsize(fd: int) -> None:
    import fcntl
    import termios

    if os.isatty(0):
        try:
            fcntl.ioctl(fd, termios.TIOCSWINSZ, fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
        except OSError:
            pass


def reap(c: Container, block: bool = True) -> ExitInfo | None:
    """Collect the exit status of the container's PID 1 (and with it, the whole pid namespace)."""
    if c.exit is not None:
        return c.exit
    try:
        pid, status = os.waitpid(c.pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        pid, status = c.pid, 0
    if pid == 0:
        return None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    code = 128 + sig if sig else os.WEXITSTATUS(status)
    oom = c.cgroup.oom_kills() > 0
    c.exit = ExitInfo(code, sig, oom, c.cgroup.memory_peak())
    return c.exit


def stop(c: Container, sig: int | None = None, grace: float | None = None) -> ExitInfo:
    """Send the stop signal, wait up to the grace period, then SIGKILL everything in the cgroup.
    A PID 1 that does not catch the signal is killed at once (see `heeds`)."""
    if c.exit is None:
        sig = sig or c.cfg.stop_signal
        if heeds(c.pid, sig):
            _kill(c, sig)
            if not readable([c.pidfd], c.cfg.stop_grace if grace is None else grace):
                _kill(c, signal.SIGKILL)
        else:
            _kill(c, signal.SIGKILL)
    info = reap(c)
    assert info is not None
    return info


def heeds(pid: int, sig: int, status_dir: str = "/proc") -> bool:
    """Whether the container's PID 1 will act on `sig`: the kernel delivers a signal to the init of
    a pid namespace only when it has a handler for it (SigCgt in /proc/PID/status), so a PID 1
    without one (python, node, a shell script run without an init) never sees the stop signal, and
    waiting out its grace period achieves nothing.  An init (tini) catches it and forwards it.
    A blocked signal is queued whatever its disposition, so blocked counts as heard; an init such
    as tini blocks every signal and waits for them in rt_sigtimedwait, during which the kernel
    shows them unblocked (SigBlk 0, SigCgt 0), so a PID 1 sleeping there counts as heard too.
    When the status cannot be read the answer is yes: the grace period is the safe way."""
    masks: dict[str, int] = {}
    try:
        with open(f"{status_dir}/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("SigCgt", "SigBlk"):
                    masks[key] = int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        return True
    if "SigCgt" not in masks or (masks["SigCgt"] | masks.get("SigBlk", 0)) >> (sig - 1) & 1:
        return True
    try:
        with open(f"{status_dir}/{pid}/syscall") as f:
            return f.read().split(" ", 1)[0] == str(SYS_RT_SIGTIMEDWAIT.get(os.uname().machine, -1))
    except OSError:
        return False


SYS_RT_SIGTIMEDWAIT = {"x86_64": 128, "aarch64": 137}


def _kill(c: Container, sig: int) -> None:
    try:
        signal.pidfd_send_signal(c.pidfd, sig)
    except ProcessLookupError:
        pass


def cleanup(c: Container, remove_state: bool = True) -> None:
    """Remove what start() made on the host: cgroup, pidfd, pty, and (for --rm) the state dir.
    Mounts need no cleanup: they live in the container's mount namespace and die with it."""
    try:
        c.cgroup.remove()
    finally:
        for fd in (c.pidfd, c.pty_master):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        c.pty_master = None
        if remove_state:
            shutil.rmtree(c.cfg.state_dir, ignore_errors=True)


def run_attached(c: Container, on_signal: Callable[[int], None] | None = None) -> ExitInfo:
    """Wait for the container, forwarding SIGINT/SIGTERM/SIGHUP (a second one kills), relaying the
    pty when there is one."""
    received: list[int] = []
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = signal.set_wakeup_fd(wake_w)
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH)
    old = {s: signal.signal(s, lambda n, f: None) for s in handled}
    relay = _PtyRelay(c.pty_master) if c.pty_master is not None else None
    kill_at: float | None = None
    try:
        while True:
            fds = [c.pidfd, wake_r] + (relay.fds() if relay else [])
            timeout = None if kill_at is None else max(0.0, kill_at - time.monotonic())
            ready = readable(fds, timeout)
            if relay:
                relay.pump(ready)
            if wake_r in ready:
                for b in os.read(wake_r, 64):
                    if b == signal.SIGWINCH:
                        if relay:
                            _copy_winsize(relay.master)
                        continue
                    received.append(b)
                    if on_signal:
                        on_signal(b)
                    if len([s for s in received if s != signal.SIGWINCH]) >= 2:
                        _kill(c, signal.SIGKILL)
                    else:
                        _kill(c, b if b == signal.SIGINT and c.cfg.init else c.cfg.stop_signal)
                        kill_at = time.monotonic() + c.cfg.stop_grace
            if c.pidfd in ready:
                if relay:
                    relay.drain()
                break
            if kill_at is not None and time.monotonic() >= kill_at:
                _kill(c, signal.SIGKILL)
                kill_at = None
    finally:
        if relay:
            relay.restore()
        for s, h in old.items():
            signal.signal(s, h)
        signal.set_wakeup_fd(old_wakeup)
        os.close(wake_r)
        os.close(wake_w)
    info = reap(c)
    assert info is not None
    return info


class _PtyRelay:
    def __init__(self, master: int) -> None:
        self.master = master
        self.saved = None
        self.stdin_open = True
        if os.isatty(0):
            import termios
            import tty

            self.saved = termios.tcgetattr(0)
            tty.setraw(0)

    def fds(self) -> list[int]:
        return [self.master] + ([0] if self.stdin_open else [])

    def pump(self, ready: list[int]) -> None:
        if self.master in ready:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            if data:
                os.write(1, data)
        if 0 in ready and self.stdin_open:
            data = os.read(0, 65536)
            if data:
                os.write(self.master, data)
            else:
                self.stdin_open = False
                os.write(self.master, b"\x04")

    def drain(self) -> None:
        while True:
            if not readable([self.master], 0):
                return
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            os.write(1, data)

    def restore(self) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)


def describe_exit(info: ExitInfo, name: str, memory_limit: int | None) -> str | None:
    if info.oom_killed:
        from envtool._util.units import format_size

        limit = f" (memory limit {format_size(memory_limit)})" if memory_limit else ""
        return f"container {name} was OOM-killed{limit}"
    if info.signal:
        return f"container {name} was killed by {signal.Signals(info.signal).name}"
    return None


__all__ = ["Container", "ExitInfo", "cleanup", "find_init", "reap", "run_attached",
           "start", "stop"]
