"""Rootless: envtool run by an ordinary user, in podman's rootless model.

One *session* per user holds three namespaces made by an unprivileged `unshare`: a user namespace
mapping container root to the user and uids 1…65536 to the user's subordinate range (newuidmap /
newgidmap, /etc/subuid), a mount namespace (overlay mounts, binds) and a network namespace (the
projects' bridges, veths, DNS and nftables tables).  Every envtool command that starts or enters
containers joins the session first (setns) and then runs exactly the code root runs: inside, it has
every capability over those namespaces and over nothing else.  pasta (package passt) connects the
session's network namespace to the host's: outgoing traffic leaves through it, and the ports the
session's stacks publish are bound on the host by it.

    session daemon   (host namespaces, the user)   owns the two below; restarts pasta when the
                     set of published ports changes; listens on RUN_DIR/session.sock
    ├── pause        (the session's namespaces)    holds them while no container runs
    └── pasta -f     (host side + the session netns)

Files: RUN_DIR ($XDG_RUNTIME_DIR/envtool, else /tmp/envtool-<uid>) holds session.json, the socket
and pasta's log; the store defaults to $XDG_DATA_HOME/envtool (~/.local/share/envtool)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shutil
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envtool.errors import HostError, InputError

if TYPE_CHECKING:
    import subprocess

MARK = "ENVTOOL_ROOTLESS"            # set once joined: the run dir (children and subprocesses inherit it)
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
SUBIDS = 65536                        # container uids 1…65536 (root is the user)


class PublishRefused(InputError):
    code = "port-in-use"


# ---- where things live ---------------------------------------------------------------------------
def active() -> bool:
    """Inside a rootless session (this process or an ancestor joined one)."""
    return bool(os.environ.get(MARK))


def unprivileged() -> bool:
    """envtool runs for an ordinary user: not yet joined (not root), or inside the session (root
    of its user namespace, the user on the host)."""
    return os.geteuid() != 0 or active()


def wanted() -> bool:
    """Run rootless: an ordinary user, not yet in a session."""
    return os.geteuid() != 0 and not active()


def run_dir() -> Path:
    if active():
        return Path(os.environ[MARK])
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg) and os.stat(xdg).st_uid == os.getuid():
        return Path(xdg) / "envtool"
    return Path(f"/tmp/envtool-{os.getuid()}")


def default_root() -> Path:
    """The store of an ordinary user: $XDG_DATA_HOME/envtool, else ~/.local/share/envtool."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "envtool"


def _private_run_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.lstat()
    if st.st_uid != os.getuid() or not path.is_dir() or path.is_symlink():
        raise HostError(f"{path} is not a directory of yours; envtool keeps its session there",
                        hint="set XDG_RUNTIME_DIR to a private directory of yours")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


# ---- what the host must offer --------------------------------------------------------------------
def subid_range(path: str, user: str, uid: int) -> tuple[int, int] | None:
    """The first range of at least SUBIDS ids for the user (by name or uid) in /etc/subuid|subgid."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in (user, str(uid)) and parts[1].isdigit() and parts[2].isdigit():
            if int(parts[2]) >= SUBIDS:
                return int(parts[1]), int(parts[2])
    return None


def free_range(path: str = "/etc/subuid") -> str:
    """A span of SUBIDS ids past every range in the file (from 100000 up), for the hint."""
    end = 100000
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() and int(parts[1]) < 2**31:
                    end = max(end, int(parts[1]) + int(parts[2]))
    except OSError:
        pass
    return f"{end}-{end + SUBIDS - 1}"


def _user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def preflight() -> tuple[tuple[int, int], tuple[int, int]]:
    """One clear line for each thing a rootless session needs and this host lacks."""
    user = _user()
    for knob, what in (("/proc/sys/kernel/unprivileged_userns_clone", "kernel.unprivileged_userns_clone=1"),
                       ("/proc/sys/user/max_user_namespaces", "user.max_user_namespaces=28633")):
        try:
            with open(knob) as f:
                if f.read().strip() == "0":
                    raise HostError("this kernel does not allow unprivileged user namespaces, which envtool "
                                    "needs to run without root", hint=f"sudo sysctl -w {what}, or run envtool as root")
        except OSError:
            pass
    for tool in ("newuidmap", "newgidmap"):
        if not shutil.which(tool):
            raise HostError(f"{tool} is not installed; envtool maps container users onto your subordinate "
                            "ids with it", hint="sudo apt-get install uidmap")
    uids = subid_range("/etc/subuid", user, os.getuid())
    gids = subid_range("/etc/subgid", user, os.getuid())
    if uids is None or gids is None:
        missing = "/etc/subuid" if uids is None else "/etc/subgid"
        raise HostError(f"{user} has no subordinate id range of {SUBIDS} ids in {missing}; envtool gives "
                        "container users (postgres, www-data …) ids from it",
                        hint=f"sudo usermod --add-subuids {free_range()} --add-subgids {free_range()} {user}")
    if not shutil.which("pasta"):
        raise HostError("pasta is not installed; envtool connects rootless stacks to the network and "
                        "publishes their ports with it", hint="sudo apt-get install passt")
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        raise HostError(f"/dev/net/tun is not read-write for {user}; pasta needs it to connect rootless "
                        "stacks to the network", hint="sudo chmod 0666 /dev/net/tun (Debian's default mode)")
    return uids, gids


# ---- joining ---------------------------------------------------------------------------------------
def enter() -> None:
    """Join this user's session, starting it first when none runs.  Must run before this process
    starts a thread (setns into a user namespace refuses a threaded process)."""
    if not wanted():
        return
    rd = run_dir()
    if _live_session(rd) is None:
        preflight()                     # before anything is created: a refusal leaves nothing behind
    _private_run_dir(rd)
    with _locked(rd / "session.lock"):
        session = _live_session(rd)
        if session is None:
            preflight()
            session = _start_daemon(rd)
    _join(session["pause"], rd)


def _join(pause: int, rd: Path) -> None:
    import threading

    from envtool.runtime.syscalls import LinuxSyscalls

    if threading.active_count() > 1:
        raise HostError("internal: the rootless session is joined after a thread started")
    sc = LinuxSyscalls()
    fds = {}
    try:
        for ns in ("user", "mnt", "net"):
            fds[ns] = os.open(f"/proc/{pause}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
        cwd = os.getcwd()
        for ns, kind in (("user", CLONE_NEWUSER), ("mnt", CLONE_NEWNS), ("net", CLONE_NEWNET)):
            sc.setns(fds[ns], kind)
        with contextlib.suppress(OSError):
            os.chdir(cwd)
    except OSError as e:
        raise HostError(f"cannot join the rootless session (pid {pause}): {e}",
                        hint=f"end it with `kill {pause}` and run the command again") from None
    finally:
        for fd in fds.values():
            os.close(fd)
    os.environ[MARK] = str(rd)


@contextlib.contextmanager
def _locked(path: Path) -> Any:
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _start_time(pid: int) -> int | None:
    """The process's start time, None when it is gone (or a zombie: its namespaces are)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _live_session(rd: Path) -> dict[str, Any] | None:
    try:
        s = json.loads((rd / "session.json").read_text())
        if all(_start_time(s[k]) == s[k + "_start"] for k in ("daemon", "pause")):
            return dict(s)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _start_daemon(rd: Path) -> dict[str, Any]:
    import subprocess
    with contextlib.suppress(FileNotFoundError):
        (rd / "session.json").unlink()
    log = open(rd / "session.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "envtool.runtime.rootless", str(rd)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=log, start_new_session=True, close_fds=True)
    log.close()
    assert proc.stdout is not None
    line = proc.stdout.readline().decode(errors="replace").strip()
    proc.stdout.close()
    if line != "ready":
        proc.wait()
        raise HostError(f"cannot start the rootless session: {line or 'it exited'}",
                        hint=f"see {rd / 'session.log'}")
    s = _live_session(rd)
    if s is None:
        raise HostError("the rootless session started but left no record", hint=f"see {rd / 'session.log'}")
    return s


# ---- published ports ---------------------------------------------------------------------------------
def publish(project: str, ports: list[tuple[str | None, int, str]]) -> None:
    """Have pasta bind these (host ip, port, protocol) on the host for the project, beside the
    other projects' ports (an empty list: the project publishes nothing now)."""
    _request({"op": "ports", "project": project, "ports": [list(p) for p in ports]})


def stop_session() -> None:
    """End the session (its pause process, pasta and daemon) when nothing of ours runs in it."""
    with contextlib.suppress(HostError):
        _request({"op": "stop"})


def _request(req: dict[str, Any]) -> dict[str, Any]:
    path = run_dir() / "session.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
        s.settimeout(30)
        try:
            s.connect(str(path))
            s.sendall(json.dumps(req).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            raise HostError(f"the rootless session does not answer ({path}: {e.strerror or e})",
                            hint="run `envtool down` in each project, then try again") from None
    reply = json.loads(data or b"{}")
    if not reply.get("ok"):
        raise PublishRefused(reply.get("error") or "the rootless session refused the request",
                        hint="stop what holds that port, or publish another one")
    return dict(reply)


# ---- the daemon (python -m envtool.runtime.rootless RUN_DIR) -------------------------------------------
def pasta_args(pause: int, ports: list[tuple[str | None, int, str]], pidfile: str) -> list[str]:
    """pasta's command line: the session netns configured like the host's interface, nothing of
    the host's loopback reachable from inside (--no-map-gw, -T/-U none: hole 4 stays closed), and
    exactly the published ports bound on the host, each on its host address."""
    args = ["pasta", "-f", "-q", "--config-net", "--no-map-gw", "-T", "none", "-U", "none",
            "--pid", pidfile]
    for proto, flag in (("tcp", "-t"), ("udp", "-u")):
        chosen = sorted({(ip or "", port) for ip, port, p in ports if p == proto})
        if not chosen:
            args += [flag, "none"]
        for ip, port in chosen:
            args += [flag, f"{ip}/{port}" if ip and ip not in ("0.0.0.0", "::") else str(port)]
    return args + ["--userns", f"/proc/{pause}/ns/user", "--netns", f"/proc/{pause}/ns/net"]


def _listening(pid: int, ports: set[int], proto: str) -> bool:
    """pasta (in the host's netns) holds every port."""
    seen = set()
    for table in (proto, proto + "6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                for line in f.read().splitlines()[1:]:
                    parts = line.split()
                    if proto == "udp" or parts[3] == "0A":
                        seen.add(int(parts[1].rsplit(":", 1)[1], 16))
        except (OSError, IndexError, ValueError):
            continue
    return ports <= seen


class Daemon:
    def __init__(self, rd: Path) -> None:
        self.rd = rd
        self.pause = 0
        self.pasta: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, list[tuple[str | None, int, str]]] = {}
        self.sock_ino = -1

    def make_namespaces(self) -> None:
        import subprocess

        from envtool.runtime.syscalls import LinuxSyscalls

        uids, gids = preflight()
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:                                          # the pause process
            try:
                os.close(ready_r)
                os.close(go_w)
                sc = LinuxSyscalls()
                try:
                    sc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET)
                except OSError as e:
                    os.write(ready_w, f"E{e}".encode())
                    os._exit(1)
                os.write(ready_w, b"1")
                if os.read(go_r, 1) != b"1":
                    os._exit(1)
                sc.mount(None, "/", None, MS_REC | MS_PRIVATE, None)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                while True:
                    signal.pause()
            finally:
                os._exit(1)
        os.close(ready_w)
        os.close(go_r)
        self.pause = pid
        said = os.read(ready_r, 4096).decode(errors="replace")
        os.close(ready_r)
        if said != "1":
            why = said[1:] or "it exited"
            raise HostError("cannot create a user namespace: " + why,
                            hint="this kernel or its settings refuse unprivileged user namespaces")
        for tool, own, (start, _count) in (("newuidmap", os.getuid(), uids), ("newgidmap", os.getgid(), gids)):
            proc = subprocess.run([tool, str(pid), "0", str(own), "1", "1", str(start), str(SUBIDS)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise HostError(f"{tool} failed: {proc.stderr.strip()}",
                                hint="check your ranges in /etc/subuid and /etc/subgid")
        os.write(go_w, b"1")
        os.close(go_w)

    def start_pasta(self) -> str | None:
        """(Re)start pasta with the union of the projects' ports; the error, or None."""
        import subprocess
        if self.pasta is not None:
            self.pasta.terminate()
            try:
                self.pasta.wait(5)
            except subprocess.TimeoutExpired:
                self.pasta.kill()
                self.pasta.wait()
        ports = sorted({p for ps in self.ports.values() for p in ps}, key=lambda p: (p[1], p[2], p[0] or ""))
        pidfile = str(self.rd / "pasta.pid")
        log = open(self.rd / "pasta.log", "wb")
        self.pasta = subprocess.Popen(pasta_args(self.pause, ports, pidfile), stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=log, close_fds=True)
        log.close()
        deadline = time.monotonic() + 5
        for proto in ("tcp", "udp"):
            want = {p[1] for p in ports if p[2] == proto}
            while not _listening(self.pasta.pid, want, proto) or not self._netns_up():
                if self.pasta.poll() is not None or time.monotonic() > deadline:
                    text = (self.rd / "pasta.log").read_text(errors="replace").strip().splitlines()
                    return "pasta: " + (text[-1] if text else f"exited {self.pasta.returncode}")
                time.sleep(0.01)
        return None

    def _netns_up(self) -> bool:
        try:
            return os.path.exists(f"/proc/{self.pause}/ns/net") and self.pasta is not None and \
                self.pasta.poll() is None and os.path.getsize(self.rd / "pasta.pid") > 0
        except OSError:
            return False

    def record(self) -> None:
        assert self.pasta is not None
        data = {"daemon": os.getpid(), "daemon_start": _start_time(os.getpid()), "pause": self.pause,
                "pause_start": _start_time(self.pause), "pasta": self.pasta.pid}
        tmp = self.rd / "session.json.tmp"
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.rd / "session.json")

    def serve(self) -> None:
        path = self.rd / "session.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        srv.bind(str(path))
        os.chmod(path, 0o600)
        self.sock_ino = path.stat().st_ino
        srv.listen(16)
        srv.settimeout(1.0)
        while True:
            if self._pause_gone():
                return
            if self.pasta is not None and self.pasta.poll() is not None:
                print(f"pasta exited ({self.pasta.returncode}); restarting it", file=sys.stderr, flush=True)
                self.start_pasta()
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                try:
                    req = json.loads(_read_line(conn))
                except (OSError, ValueError):
                    continue
                if req.get("op") == "stop":          # gone before the answer: the next command starts afresh
                    self.close()
                    _reply(conn, {"ok": True})
                    return
                if req.get("op") == "ports":
                    before = dict(self.ports)
                    self.ports[str(req["project"])] = [(ip, int(port), str(proto)) for ip, port, proto in req["ports"]]
                    if not self.ports[str(req["project"])]:
                        del self.ports[str(req["project"])]
                    if self.ports == before:
                        _reply(conn, {"ok": True})
                        continue
                    err = self.start_pasta()
                    if err:
                        self.ports = before
                        self.start_pasta()
                    _reply(conn, {"ok": err is None, "error": err})
                else:
                    _reply(conn, {"ok": False, "error": f"unknown op {req.get('op')!r}"})

    def _pause_gone(self) -> bool:
        try:
            pid, _ = os.waitpid(self.pause, os.WNOHANG)
            return pid != 0
        except ChildProcessError:
            return True

    def close(self) -> None:
        import subprocess
        with contextlib.suppress(FileNotFoundError):
            (self.rd / "session.json").unlink()          # first: nobody joins a session that is ending
        if self.pasta is not None and self.pasta.poll() is None:
            self.pasta.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.pasta.wait(5)
        if self.pause:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pause, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pause, 0)
        self.pause = 0
        sock = self.rd / "session.sock"
        with contextlib.suppress(FileNotFoundError):
            if sock.stat().st_ino == self.sock_ino:           # not a newer session's
                sock.unlink()


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < 1 << 20:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _reply(conn: socket.socket, obj: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(obj).encode() + b"\n")


def main(argv: list[str]) -> int:
    rd = Path(argv[0])
    d = Daemon(rd)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        d.make_namespaces()
        err = d.start_pasta()
        if err:
            raise HostError(err)
        d.record()
    except HostError as e:
        print(e.message + (f" ({e.hint})" if e.hint else ""), flush=True)
        d.close()
        return 1
    print("ready", flush=True)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    try:
        d.serve()
    finally:
        d.close()
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main(sys.argv[1:]))
    sys.exit(130)
